"""Does greedy RBM pretraining help backprop?  The same DBN, pretrained vs randomly initialised, same budget.

The claim (Hinton, Osindero & Teh 2006; Hinton & Salakhutdinov 2006): a deep
sigmoid network initialised by stacking RBMs, then fine-tuned by backprop,
generalises better than the same network trained by backprop from a random
start.  Both arms here are the dbn_hashing task's network (visible → hidden
layers → code layer, here 64-256-128-32 on the digits) with the same
fine-tuning budget (epochs, batch size, optimizer, learning-rate schedule);
only the starting weights differ: the unrolled RBM stack, or PyTorch's default
random initialisation.  Pretraining is extra unsupervised compute on the same
training images, reported in its own column.

* ``classify``: a softmax layer on the code layer, fine-tuned with labels
  (supervised); the figure is the test error rate.
* ``autoencoder``: the semantic-hashing autoencoder; the figure is the test
  mAP of its codes.

``--random-budgets 1 4`` adds an arm that gives random initialisation four
times the fine-tuning budget, for context.

Run from the repository root::

    python benchmarks/dbn_pretraining.py                    # digits, 3 seeds, both heads
    python benchmarks/dbn_pretraining.py --heads classify --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

FIGURE = {"classify": ("error_rate", "test error"), "autoencoder": ("map", "test mAP")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", nargs="+", default=["classify", "autoencoder"], choices=sorted(FIGURE))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--random-budgets",
        type=int,
        nargs="+",
        default=[1],
        help="fine-tuning budgets (multiples of the preset's epochs) for the random-init arm",
    )
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("artifacts/dbn_pretraining"))
    args = parser.parse_args()

    from apptool.bundle import CONFIG, read_json, read_metrics
    from apptool.engine import train
    from apptool.plugins import get_plugins

    task = get_plugins().task("dbn_hashing")
    arms = {"pretrained RBMs + backprop": (True, 1)}  # name -> (pretrain?, budget multiplier)
    arms.update({"random init + backprop" + (f", {b}× budget" if b != 1 else ""): (False, b) for b in args.random_budgets})
    results = []
    for head in args.heads:
        key, _ = FIGURE[head]
        for arm, (pretrain, budget) in arms.items():
            for seed in args.seeds:
                base = task.config(args.preset)
                config = task.config(
                    args.preset,
                    {
                        "seed": seed,
                        "model": {"head": head, "pretrain": pretrain},
                        "train": {"epochs": base["train"]["epochs"] * budget},
                    },
                )
                out = args.out / f"{head}-{'pre' if pretrain else 'rand'}-x{budget}-seed{seed}"
                started = time.perf_counter()
                train(task, config, out, args.data, progress=False)
                seconds = time.perf_counter() - started
                metrics = read_metrics(out)
                pre_seconds = (metrics.get("prepare") or {}).get("seconds", 0.0)  # the greedy stage's log, from Task.prepare
                value = metrics["test"][key]
                results.append(
                    {
                        "head": head,
                        "arm": arm,
                        "seed": seed,
                        "epochs": config["train"]["epochs"],
                        key: value,
                        "seconds": round(seconds, 1),
                        "pretraining_seconds": pre_seconds,
                    }
                )
                print(f"{head:12s} {arm:36s} seed {seed}: {key} {value:.4f} ({seconds:.0f} s)", flush=True)

    config = task.config(args.preset)
    m = config["model"]
    shape = read_json(out / CONFIG)["input_shape"]
    print(
        f"\nDBN {'-'.join(map(str, [int(np.prod(shape)), *m['hidden'], m['bits']]))} on {args.data or 'the built-in digits'}, "
        f"preset {args.preset}; fine-tuning {config['train']['epochs']} epochs, {config['train']['optimizer']} "
        f"lr {config['train']['lr']}, batch {config['train']['batch_size']}; RBMs {m['rbm']['epochs']} epochs of "
        f"CD-{m['rbm']['cd_k']}; seeds {args.seeds}; test split, ONNX Runtime\n"
    )
    print("| head | arm | fine-tuning epochs | figure | mean ± std | per seed | pretraining s |")
    print("|---|---|---|---|---|---|---|")
    for head in args.heads:
        key, label = FIGURE[head]
        for arm in arms:
            rows = [r for r in results if r["head"] == head and r["arm"] == arm]
            values = np.array([r[key] for r in rows])
            print(
                f"| {head} | {arm} | {rows[0]['epochs']} | {label} | {values.mean():.4f} ± {values.std():.4f} | "
                f"{', '.join(f'{v:.4f}' for v in values)} | {np.mean([r['pretraining_seconds'] for r in rows]):.1f} |"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

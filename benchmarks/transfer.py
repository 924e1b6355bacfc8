"""Transfer learning, measured over every image task: random init vs `apptool pretrain` vs ImageNet, small data.

Every arm of a task trains on the same small training set (e.g. 32 scenes for
scene labeling, about 100 frames for PoseNet) with the same epochs, batch size
and learning rate, and is scored on the same held-out split on ONNX Runtime
(the bundle's own ``eval``).  Only the network's starting point and how its
encoder trains differ:

* ``default``: the task's own network before ImageNet, from random init
  (PilotNet for steering, pixels for DBN hashing, ``test_resnet`` for
  captioning, ``mobilenetv3_small_100`` for PoseNet); absent for scene
  labeling, whose network was resnet10t;
* ``resnet10t-random``: resnet10t from random init, trained in full;
* ``resnet10t-pretrain`` / ``-frozen``: resnet10t from ``apptool pretrain``
  (47 procedural classes, preset quick), fine-tuned in full (encoder at 0.3x the
  learning rate) or frozen (head only);
* ``lite0-random``: EfficientNet-Lite0 from random init, trained in full (the
  fair architecture comparison for the ImageNet rows);
* ``lite0-imagenet`` / ``-frozen``: EfficientNet-Lite0 from its ImageNet-1k
  weights (``--pretrained imagenet``), fine-tuned in full (0.3x) or frozen.

DBN hashing trains its RBMs and autoencoder on frozen features only (its
fine-tuning loss reconstructs the encoder's own output, so training the encoder
through it is meaningless): its ``full`` arms are absent.

Run from the repository root::

    python benchmarks/transfer.py                                   # every task, seeds 0 and 1
    python benchmarks/transfer.py --tasks scene_labeling --seeds 0,1,2
    python benchmarks/transfer.py --pretrained BUNDLE               # a backbone bundle from `apptool pretrain`

Finished runs under ``--out`` with the same settings are reused (``--rerun``
trains them again), so the table can be printed while a long run goes on.  It
prints the table (mean and seed-to-seed spread per arm) and writes it to
``--out/transfer.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from apptool.bundle import CONFIG, METRICS

PRETRAIN_BACKBONE = "resnet10t"
IMAGENET_BACKBONE = "efficientnet_lite0"
FULL = {"finetune": "full", "backbone_lr_mult": 0.3}  # a pretrained encoder fine-tunes at 0.3x the learning rate
SCRATCH = {"finetune": "full", "backbone_lr_mult": 1.0}
FROZEN = {"finetune": "frozen"}

#: arm -> (backbone, weights: None | "pretrain" | "imagenet", train overrides); backbone None = the task's "baseline"
ARMS: dict[str, tuple[str | None, str | None, dict[str, Any]]] = {
    "default": (None, None, SCRATCH),
    "resnet10t-random": (PRETRAIN_BACKBONE, None, SCRATCH),
    "resnet10t-pretrain": (PRETRAIN_BACKBONE, "pretrain", FULL),
    "resnet10t-pretrain-frozen": (PRETRAIN_BACKBONE, "pretrain", FROZEN),
    "lite0-random": (IMAGENET_BACKBONE, None, SCRATCH),
    "lite0-imagenet": (IMAGENET_BACKBONE, "imagenet", FULL),
    "lite0-imagenet-frozen": (IMAGENET_BACKBONE, "imagenet", FROZEN),
}


#: Per task: the small-data, small-budget config every arm shares, the metric, and which arms apply.
TASKS: dict[str, dict[str, Any]] = {
    "scene_labeling": {
        "metric": "miou",
        "higher": True,
        "overrides": {
            "data": {"n_train": 32, "n_test": 48, "height": 96, "width": 96, "long_side": 96},
            "train": {"epochs": 16, "batch_size": 8, "lr": 2e-3, "val_fraction": 0.0, "patience": 0, "warmup_epochs": 1},
        },
        "size": "32 training scenes, 48 held-out, 96 px, 16 epochs of batch 8",
        "baseline": None,
    },
    "posenet": {
        "metric": "median_pos_err_m",
        "higher": False,
        "overrides": {
            "model": {"hidden": 256},
            "data": {
                "render_size": [86, 64],
                "max_resize": 64,
                "train_sequences": 9,
                "test_sequences": 4,
                "frames_per_sequence": 12,
            },
            "train": {"epochs": 12, "batch_size": 16, "val_fraction": 0.0, "patience": 0},
        },
        "size": "108 training frames (9 walks), 48 held-out, 64/56 px, 12 epochs of batch 16",
        "baseline": {"backbone": "mobilenetv3_small_100", "pretrained": None},
    },
    "steering": {
        "metric": "rmse",
        "higher": False,
        "overrides": {
            "data": {"n_train": 256, "n_test": 128, "tracks_train": 8, "tracks_test": 4, "sim": {"seconds": 30.0}},
            "train": {"epochs": 8, "batch_size": 32, "val_fraction": 0.0, "patience": 0},
        },
        "size": "256 training frames (8 tracks), 128 held-out (4 unseen tracks), 66x200 px, 8 epochs of batch 32",
        "baseline": {"backbone": "pilotnet", "pretrained": None},
    },
    "captioning": {
        "metric": "bleu4",
        "higher": True,
        "overrides": {
            "data": {"train_size": 200, "test_size": 100},
            "train": {"epochs": 8, "batch_size": 32, "val_fraction": 0.0, "patience": 0},
        },
        "size": "200 training images, 100 held-out, 64 px, 8 epochs of batch 32",
        "baseline": {"backbone": "test_resnet", "pretrained": None},
    },
    "dbn_hashing": {
        "metric": "map",
        "higher": True,
        "overrides": {
            "model": {"backbone_size": 64, "rbm": {"epochs": 10}},
            "data": {"source": "digits"},
            "train": {"epochs": 8, "val_fraction": 0.1},
        },
        "size": "digits (1,437 database / 360 queries), features at 64 px, RBMs 10 epochs, autoencoder 8 epochs",
        "baseline": {"features": "pixels"},
        "frozen_only": True,
    },
}


def ensure_backbone(pretrained: Path | None, out: Path, console: Console, make: bool = True) -> Path:
    """The resnet10t backbone bundle to start from: the one given, one made before under ``out``, or a fresh one."""
    from apptool.pretrain import pretrain

    if pretrained is not None:
        return pretrained
    cached = out / f"pretrained-{PRETRAIN_BACKBONE}-quick"
    if (cached / CONFIG).is_file() or not make:
        return cached
    console.print(f"pretraining {PRETRAIN_BACKBONE} (preset quick) into {cached} ...")
    return pretrain(PRETRAIN_BACKBONE, cached, preset="quick", seed=0)


def arm_overrides(task_name: str, arm: str, seed: int, backbone_bundle: Path | None) -> dict[str, Any] | None:
    """The config overrides of one arm on one task, or None where the arm does not apply."""
    from apptool.task import deep_merge

    spec = TASKS[task_name]
    backbone, weights, train = ARMS[arm]
    if arm == "default" and spec["baseline"] is None:
        return None  # the task's network was resnet10t: the same run as resnet10t-random
    if spec.get("frozen_only"):
        if train is not FROZEN and weights is not None:
            return None
        train = FROZEN  # random-init features stay random too: a baseline for what the weights bring
    overrides = deep_merge(spec["overrides"], {"seed": seed, "train": dict(train)})
    if backbone is None:
        return deep_merge(overrides, {"model": spec["baseline"]})
    pretrained = {None: None, "pretrain": str(backbone_bundle), "imagenet": "imagenet"}[weights]
    model = {"backbone": backbone, "pretrained": pretrained}
    if task_name == "dbn_hashing":
        model["features"] = "backbone"
    return deep_merge(overrides, {"model": model})


def _same_run(bundle_dir: Path, config: dict) -> bool:
    """Whether ``bundle_dir`` holds a finished run of this config: same model, seed and training settings.

    Training keys the toolkit added since the run (absent from its config) are not compared.
    """
    path = bundle_dir / CONFIG
    if not path.is_file() or not (bundle_dir / METRICS).is_file():
        return False
    done = json.loads(path.read_text())
    train = {k: v for k, v in config["train"].items() if k in done.get("train", {})}
    return done.get("model") == config["model"] and done.get("seed") == config["seed"] and done["train"] == train


def run_arm(task_name: str, arm: str, seed: int, backbone_bundle: Path | None, args, console: Console) -> dict | None:
    from apptool.engine import train
    from apptool.plugins import get_plugins

    overrides = arm_overrides(task_name, arm, seed, backbone_bundle)
    if overrides is None:
        return None
    task = get_plugins().task(task_name)
    config = task.config("quick", overrides)
    bundle_dir = args.out / task_name / f"{arm}-seed{seed}"
    if args.rerun or not _same_run(bundle_dir, config):
        if args.report_only:
            return None
        console.print(f"[bold]{task_name}[/] {arm} seed {seed} ...")
        train(task, config, bundle_dir, progress=not args.quiet)
    metrics = json.loads((bundle_dir / METRICS).read_text())
    return {
        "task": task_name,
        "arm": arm,
        "seed": seed,
        "backbone": config["model"].get("backbone") if config["model"].get("features", "backbone") == "backbone" else "pixels",
        "pretrained": config["model"].get("pretrained"),
        "finetune": config["train"]["finetune"],
        "metric": TASKS[task_name]["metric"],
        "value": float(metrics["test"][TASKS[task_name]["metric"]]),
        "seconds": float(metrics["training"]["seconds"]),
    }


def summarise(results: list[dict]) -> list[dict]:
    """Mean and spread (max - min over seeds) per task and arm, with each arm's rank in its task."""
    rows: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        rows.setdefault((r["task"], r["arm"]), []).append(r)
    summary = []
    for (task_name, arm), runs in rows.items():
        values = [r["value"] for r in runs]
        summary.append(
            {
                "task": task_name,
                "arm": arm,
                "backbone": runs[0]["backbone"],
                "finetune": runs[0]["finetune"],
                "metric": runs[0]["metric"],
                "mean": statistics.fmean(values),
                "spread": max(values) - min(values),
                "values": values,
                "seconds": statistics.fmean(r["seconds"] for r in runs),
            }
        )
    return summary


def verdict(summary: list[dict], task_name: str) -> str:
    """Whether ImageNet fine-tuning beats every other arm of the task by more than the seed-to-seed spread."""
    rows = {s["arm"]: s for s in summary if s["task"] == task_name}
    imagenet = rows.get("lite0-imagenet-frozen" if TASKS[task_name].get("frozen_only") else "lite0-imagenet")
    others = [s for arm, s in rows.items() if not arm.startswith("lite0-imagenet")]
    if imagenet is None or not others:
        return "incomplete"
    sign = 1 if TASKS[task_name]["higher"] else -1
    best = max(others, key=lambda s: sign * s["mean"])
    margin = sign * (imagenet["mean"] - best["mean"])
    spread = max(imagenet["spread"], best["spread"])
    word = "best" if margin > spread else "best, within the spread" if margin > 0 else "not best"
    return f"ImageNet {word}: {margin:+.3f} over {best['arm']} (spread {spread:.3f})"


def print_table(summary: list[dict], seeds: list[int], console: Console) -> None:
    for task_name in dict.fromkeys(s["task"] for s in summary):
        spec = TASKS[task_name]
        arrow = "higher is better" if spec["higher"] else "lower is better"
        table = Table(title=f"{task_name}: {spec['size']}; {spec['metric']} ({arrow}), seeds {seeds}")
        for column in ("arm", "encoder", "training", spec["metric"], "spread", "per seed", "train s"):
            table.add_column(column, no_wrap=True)
        for s in (s for s in summary if s["task"] == task_name):
            table.add_row(
                s["arm"],
                s["backbone"],
                s["finetune"],
                f"{s['mean']:.3f}",
                f"{s['spread']:.3f}",
                " ".join(f"{v:.3f}" for v in s["values"]),
                f"{s['seconds']:.0f}",
            )
        console.print(table)
        console.print(verdict(summary, task_name))


def markdown(summary: list[dict], task_name: str) -> str:
    """One task's rows as a Markdown table (for the READMEs)."""
    spec = TASKS[task_name]
    lines = [
        f"| arm | encoder | training | {spec['metric']} (mean) | spread | per seed | train s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in (s for s in summary if s["task"] == task_name):
        values = " / ".join(f"{v:.3f}" for v in s["values"])
        lines.append(
            f"| {s['arm']} | {s['backbone']} | {s['finetune']} | {s['mean']:.3f} | {s['spread']:.3f} | {values} | {s['seconds']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {', '.join(TASKS)}")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, from {', '.join(ARMS)}")
    parser.add_argument("--pretrained", type=Path, default=None, help="resnet10t backbone bundle (default: pretrain one)")
    parser.add_argument("--out", type=Path, default=Path("artifacts") / "transfer")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--markdown", action="store_true", help="also print each task's table as Markdown")
    parser.add_argument("--report-only", action="store_true", help="train nothing: the table of the runs finished in --out")
    parser.add_argument("--rerun", action="store_true", help="train every arm again even if --out holds its finished run")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 120))
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for kind, chosen, known in (("tasks", tasks, TASKS), ("arms", arms, ARMS)):
        if set(chosen) - set(known):
            parser.error(f"unknown {kind} {sorted(set(chosen) - set(known))}; choose from {', '.join(known)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    make = any(ARMS[a][1] == "pretrain" for a in arms) and not args.report_only
    bundle = ensure_backbone(args.pretrained, args.out, console, make)
    results = []
    for task_name in tasks:
        for seed in seeds:
            for arm in arms:
                result = run_arm(task_name, arm, seed, bundle, args, console)
                if result is not None:
                    results.append(result)
    summary = summarise(results)
    console.print("command: python benchmarks/transfer.py " + " ".join(sys.argv[1:] if argv is None else argv))
    print_table(summary, seeds, console)
    if args.markdown:
        for task_name in dict.fromkeys(s["task"] for s in summary):
            print(f"\n{task_name}: {TASKS[task_name]['size']}\n\n{markdown(summary, task_name)}\n{verdict(summary, task_name)}")
    report = {"seeds": seeds, "pretrained_bundle": str(bundle) if bundle else None, "tasks": {t: TASKS[t] for t in tasks}}
    report.update(results=results, summary=summary)
    (args.out / "transfer.json").write_text(json.dumps(report, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()

"""DBN semantic hashing vs random-projection LSH vs PCA-ITQ at 16, 32 and 64 bits, measured in one run.

For each bit length the dbn_hashing task is trained (preset ``quick`` by
default: RBM pretraining, then autoencoder fine-tuning with noisy codes) and
its bundle evaluated on ONNX Runtime; LSH and ITQ are fitted on the same
database features (the DBN's visible vector: raw pixels by default) and
scored by the same evaluation code.  Queries are the test split, the database
is the train split, relevant means same class.  mAP is over the whole
database and, like precision@10, is the expectation over random orders of
equidistant codes; precision within Hamming radius 2 counts a query with
nothing in the radius as precision 0 (``found`` is the share of queries that
found anything there).  It also checks that the ONNX encoder gives the same
bits as torch on every query and database image.

Run from the repository root::

    python benchmarks/dbn_hashing_table.py                  # digits, quick preset, seed 0
    python benchmarks/dbn_hashing_table.py --data DIR --preset full
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def bit_agreement(bundle: Path, task, images: np.ndarray) -> dict[str, float]:
    """Share of code bits on which ONNX Runtime and torch agree, and the smallest |code logit| seen."""
    from apptool.bundle import load_model
    from apptool.onnx_export import TorchRunner
    from apptool.runtime import Predictor

    model, config, _ = load_model(bundle, task)
    eager = task.encode(TorchRunner(task.graphs(model, config)), images)
    onnx = task.encode(Predictor(bundle, task=task).runner, images)
    return {
        "bit_agreement": float((eager["bits"] == onnx["bits"]).mean()),
        "min_abs_logit": float(np.abs(onnx["logits"]).min()),
        "max_logit_diff": float(np.abs(eager["logits"] - onnx["logits"]).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("artifacts/dbn_hashing_table"))
    args = parser.parse_args()

    from apptool.bundle import read_config
    from apptool.engine import train
    from apptool.evaluation import evaluate_bundle
    from apptool.plugins import get_plugins

    task = get_plugins().task("dbn_hashing")
    rows = []
    for bits in args.bits:
        config = task.config(args.preset, {"seed": args.seed, "model": {"bits": bits}})
        started = time.perf_counter()
        bundle = train(task, config, args.out / f"bits{bits}", args.data, progress=False)
        seconds = time.perf_counter() - started
        metrics = evaluate_bundle(bundle, args.data)
        splits = task.load_data(read_config(bundle), args.data)
        images = np.concatenate([splits.test.images, splits.test.database.images])
        rows.append({"bits": bits, "train_seconds": round(seconds, 1), **metrics, **bit_agreement(bundle, task, images)})

    print(
        f"\nHamming retrieval on {args.data or 'the built-in digits'} (queries = test split, database = train split), "
        f"preset {args.preset}, seed {args.seed}, ONNX Runtime ({rows[0]['provider']})\n"
    )
    print("| method | bits | mAP | precision@10 | precision r≤2 | found r≤2 |")
    print("|---|---|---|---|---|---|")
    for name, prefix in (("DBN (pretrained RBMs + autoencoder)", ""), ("LSH (random projections)", "lsh_"), ("PCA-ITQ", "itq_")):
        for row in rows:
            cells = [
                row.get(f"{prefix}map"),
                row.get(f"{prefix}precision_at_10"),
                row.get(f"{prefix}precision_r2"),
                row.get(f"{prefix}r2_found"),
            ]
            print(f"| {name} | {row['bits']} | " + " | ".join("n/a" if c is None else f"{c:.3f}" for c in cells) + " |")
    print("\n| bits | DBN training s | ONNX vs torch bit agreement | min abs code logit | max abs logit diff |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['bits']} | {row['train_seconds']} | {row['bit_agreement']:.6f} | {row['min_abs_logit']:.3g} | "
            f"{row['max_logit_diff']:.2g} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.json").write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()

"""fp32, fp16 and int8 graphs of one bundle side by side: held-out metrics, size and latency, in one run.

    python benchmarks/variants.py BUNDLE [--repeats 30] [--threads 1] [--json]

Missing variants are exported first (``apptool export BUNDLE --format fp16|int8``).  Every variant is
evaluated on the same test split and timed on the same sample inputs (batch 1, the task's full
``predict``: preprocessing, the graphs, postprocessing), on the provider ONNX Runtime picks here,
with ``--threads`` intra-op threads (0: ONNX Runtime's default, one per physical core; the output says which).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from apptool.bundle import read_config
from apptool.export_formats import run_exporter
from apptool.plugins import get_plugins
from apptool.quantize import VARIANTS, variant_dir
from apptool.runtime import OnnxRunner


def latency_ms(task, runner, config: dict, items: list, repeats: int) -> tuple[float, float]:
    """Median and p95 of one ``predict`` call on one item, over ``repeats`` calls after a warm-up."""
    task.predict(runner, items[:1], config)
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        task.predict(runner, [items[i % len(items)]], config)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times)), float(np.percentile(times, 95))


def compare(bundle: Path, repeats: int, threads: int = 0) -> dict[str, Any]:
    config = read_config(bundle)
    task = get_plugins().task(config["task"])
    for name in VARIANTS:
        if not variant_dir(bundle, name).is_dir():
            run_exporter(name, bundle, None)
    splits = task.load_data(config, None)
    items = task.sample_inputs(config, 8, seed=3)
    rows = []
    for name in ("fp32", *VARIANTS):
        folder = bundle if name == "fp32" else variant_dir(bundle, name)
        runner = OnnxRunner(folder, task.name, config["graphs"], threads=threads)
        metrics = task.evaluate(runner, splits.test, config, None)
        median, p95 = latency_ms(task, runner, config, items, repeats)
        size = sum((folder / f"{g}.onnx").stat().st_size for g in config["graphs"])
        rows.append(
            {
                "variant": name,
                "bytes": size,
                "median_ms": median,
                "p95_ms": p95,
                "provider": runner.provider,
                "metrics": {k: metrics[k] for k in task.metrics if isinstance(metrics.get(k), (int, float))},
            }
        )
    return {
        "task": task.name,
        "bundle": str(bundle),
        "primary_metric": task.primary_metric,
        "greater_is_better": task.greater_is_better,
        "test_samples": len(splits.test),
        "threads": threads,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: one per physical core)")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args(argv)
    report = compare(options.bundle, options.repeats, options.threads)
    if options.json:
        print(json.dumps(report, indent=2))
        return 0
    base = report["rows"][0]
    threads = report["threads"] or "default"
    print(
        f"{report['task']}: {report['test_samples']} held-out samples, latency of predict on one item "
        f"({base['provider']}, {threads} threads)"
    )
    names = list(base["metrics"])
    print(f"{'variant':8} {'size KB':>9} {'median ms':>10} {'p95 ms':>8}  " + "  ".join(f"{n:>14}" for n in names))
    for row in report["rows"]:
        cells = []
        for n in names:
            value, delta = row["metrics"].get(n), row["metrics"].get(n, 0) - base["metrics"][n]
            cells.append(f"{value:>8.4g}" + (f" {delta:+.3g}" if row is not base else "").rjust(6))
        print(
            f"{row['variant']:8} {row['bytes'] / 1024:>9.1f} {row['median_ms']:>10.2f} {row['p95_ms']:>8.2f}  "
            + "  ".join(f"{c:>14}" for c in cells)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

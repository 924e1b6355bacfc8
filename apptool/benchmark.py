"""``apptool bench``: torch eager and ONNX Runtime on the same inputs, measured in one run."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def _latencies(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> np.ndarray:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000.0


def bench_bundle(bundle_dir: Path, batch: int = 16, repeats: int = 20) -> dict[str, Any]:
    """Median/p95 latency and items/s of the task's full predict path at batch 1 and ``batch``."""
    import torch

    from apptool.bundle import load_model
    from apptool.export import TorchRunner
    from apptool.runtime import OnnxRunner

    model, config, task = load_model(bundle_dir)
    onnx_runner = OnnxRunner(bundle_dir, task.name, config["graphs"])
    # like with like: torch on the GPU when ONNX Runtime got one
    device = "cuda" if onnx_runner.provider != "CPUExecutionProvider" and torch.cuda.is_available() else "cpu"
    runners = {"torch": TorchRunner(task.graphs(model, config), device), "onnxruntime": onnx_runner}
    items = task.sample_inputs(config, batch, seed=1234)
    rows = []
    with torch.inference_mode():
        for size in (1, batch):
            for name, runner in runners.items():
                ms = _latencies(lambda runner=runner, size=size: task.predict(runner, items[:size], config), repeats)
                rows.append(
                    {
                        "batch": size,
                        "runtime": name,
                        "median_ms": float(np.median(ms)),
                        "p95_ms": float(np.percentile(ms, 95)),
                        "items_per_s": size * 1000.0 / float(np.median(ms)),
                    }
                )
    speedup = {}
    for size in (1, batch):
        by_runtime = {r["runtime"]: r["median_ms"] for r in rows if r["batch"] == size}
        speedup[str(size)] = by_runtime["torch"] / by_runtime["onnxruntime"]
    return {
        "task": task.name,
        "bundle": str(bundle_dir),
        "provider": runners["onnxruntime"].provider,
        "torch_device": device,
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "speedup": speedup,
    }

"""``apptool bench``: torch eager and ONNX Runtime on the same inputs, measured in one run.

Fair by construction: both runtimes get the same intra-op thread count (torch's,
which ``OMP_NUM_THREADS`` sets), torch runs under ``inference_mode``, and the two
are timed call by call in alternating order, so load from other processes falls on
both alike.  Each row also says how much of the predict path the graphs took (the
rest is the task's numpy pre- and post-processing, shared by both runtimes) and the
CPU time of the call (all threads): on a shared machine, where the wall clock also
counts the time spent waiting for a core, that is the steadier figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

WARMUP = 3


class TimedRunner:
    """A Runner that adds up the seconds its graphs take, around any other Runner."""

    def __init__(self, runner):
        self.runner, self.seconds = runner, 0.0

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        try:
            return self.runner.run(graph, feeds)
        finally:
            self.seconds += time.perf_counter() - started


def _interleaved(calls: dict[str, Callable[[], Any]], runners: dict[str, TimedRunner], repeats: int) -> dict[str, np.ndarray]:
    """Per call: wall, graph and CPU milliseconds of each named call, timed in turn (the order alternating per repeat)."""
    for call in calls.values():
        for _ in range(WARMUP):
            call()
    names = list(calls)
    times = {name: np.zeros((repeats, 3)) for name in names}
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            runners[name].seconds = 0.0
            started, cpu = time.perf_counter(), time.process_time()
            calls[name]()
            times[name][repeat] = time.perf_counter() - started, runners[name].seconds, time.process_time() - cpu
    return {name: ms * 1000.0 for name, ms in times.items()}


def bench_bundle(bundle_dir: Path, batch: int = 16, repeats: int = 20) -> dict[str, Any]:
    """Median/p95 latency and items/s of the task's full predict path at batch 1 and ``batch``."""
    import torch

    from apptool.bundle import load_model
    from apptool.onnx_export import TorchRunner
    from apptool.runtime import OnnxRunner

    threads = torch.get_num_threads()
    model, config, task = load_model(bundle_dir)
    onnx_runner = OnnxRunner(bundle_dir, task.name, config["graphs"], threads=threads)
    # like with like: torch on the GPU when ONNX Runtime got one
    device = "cuda" if onnx_runner.provider != "CPUExecutionProvider" and torch.cuda.is_available() else "cpu"
    runners = {"torch": TimedRunner(TorchRunner(task.graphs(model, config), device)), "onnxruntime": TimedRunner(onnx_runner)}
    items = task.sample_inputs(config, batch, seed=1234)
    rows = []
    speedup, cpu_speedup = {}, {}
    with torch.inference_mode():
        for size in (1, batch):
            calls = {name: (lambda r=runner, n=size: task.predict(r, items[:n], config)) for name, runner in runners.items()}
            for name, ms in _interleaved(calls, runners, repeats).items():
                median = float(np.median(ms[:, 0]))
                rows.append(
                    {
                        "batch": size,
                        "runtime": name,
                        "median_ms": median,
                        "p95_ms": float(np.percentile(ms[:, 0], 95)),
                        "graphs_ms": float(np.median(ms[:, 1])),
                        "numpy_ms": float(np.median(ms[:, 0] - ms[:, 1])),
                        "cpu_ms": float(np.median(ms[:, 2])),
                        "items_per_s": size * 1000.0 / median,
                    }
                )
            wall, cpu = ({r["runtime"]: r[key] for r in rows if r["batch"] == size} for key in ("median_ms", "cpu_ms"))
            speedup[str(size)] = wall["torch"] / wall["onnxruntime"]
            cpu_speedup[str(size)] = cpu["torch"] / max(cpu["onnxruntime"], 1e-9)
    return {
        "task": task.name,
        "bundle": str(bundle_dir),
        "provider": onnx_runner.provider,
        "torch_device": device,
        "torch_threads": threads,
        "onnxruntime_threads": threads,
        "rows": rows,
        "speedup": speedup,
        "cpu_speedup": cpu_speedup,
    }

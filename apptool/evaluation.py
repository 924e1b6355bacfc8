"""``apptool eval``: a bundle's metrics on a test split, computed on ONNX Runtime.

For a variant (``--variant fp16|int8``) the float32 graphs are evaluated on the
same split in the same run, so the report carries the metric change the
reduced precision costs, next to the size it saves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apptool.bundle import read_config
from apptool.errors import ConfigError
from apptool.plugins import get_plugins
from apptool.runtime import OnnxRunner


def evaluate_bundle(bundle_dir: Path, data_dir: Path | None = None, variant: str = "") -> dict[str, Any]:
    """The task's metrics for the bundle (or one of its exported variants) on the held-out split."""
    from apptool.quantize import variant_dir, variant_info

    config = read_config(bundle_dir)
    task = get_plugins().task(config["task"])
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(f"--data {data_dir}: no such folder")
    graph_dir = variant_dir(bundle_dir, variant) if variant else Path(bundle_dir)
    if variant and not graph_dir.is_dir():
        raise ConfigError(f"{bundle_dir}: no variant {variant!r} (run `apptool export {bundle_dir} --format {variant}`)")
    info = variant_info(bundle_dir, variant) if variant else {}
    splits = task.load_data(config, Path(data_dir) if data_dir else None)
    runner = OnnxRunner(graph_dir, task.name, config["graphs"])
    metrics = task.evaluate(runner, splits.test, config, None)
    metrics.update(
        {
            "task": task.name,
            "provider": runner.provider,
            "test_samples": len(splits.test),
            "data": str(data_dir) if data_dir else "built-in generator",
            "variant": variant or "fp32",
        }
    )
    if variant:
        baseline = task.evaluate(OnnxRunner(Path(bundle_dir), task.name, config["graphs"]), splits.test, config, None)
        numeric = [
            k for k in task.metrics if isinstance(metrics.get(k), (int, float)) and isinstance(baseline.get(k), (int, float))
        ]
        graphs = info.get("graphs", {}).values()
        metrics.update(
            {
                "fp32": {k: baseline[k] for k in numeric},
                "delta": {k: metrics[k] - baseline[k] for k in numeric},
                "bytes": sum(g["bytes"] for g in graphs),
                "fp32_bytes": sum(g["fp32_bytes"] for g in graphs),
                "kept_float32": sorted({op for g in graphs for op in g["kept_float32"]}),
            }
        )
    return metrics

"""``apptool eval``: a bundle's metrics on a test split, computed on ONNX Runtime."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from apptool.bundle import read_config
from apptool.datasets import load_splits
from apptool.errors import ConfigError
from apptool.plugins import get_plugins
from apptool.runtime import OnnxRunner


def evaluate_bundle(bundle_dir: Path, data_dir: Path | None = None, variant: str = "") -> dict[str, Any]:
    """The task's metrics for the bundle (or one of its exported variants) on the held-out split."""
    config = read_config(bundle_dir)
    task = get_plugins().task(config["task"])
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(f"--data {data_dir}: no such folder")
    graph_dir = Path(bundle_dir) / "variants" / variant if variant else Path(bundle_dir)
    if variant and not graph_dir.is_dir():
        raise ConfigError(f"{bundle_dir}: no variant {variant!r} (run `apptool export {bundle_dir} --format {variant}`)")
    splits = load_splits(task, config, Path(data_dir) if data_dir else None)
    runner = OnnxRunner(graph_dir, task.name, config["graphs"])
    metrics = task.evaluate(runner, splits.test, config, None)
    metrics.update({"task": task.name, "provider": runner.provider, "test_samples": len(splits.test),
                    "data": str(data_dir) if data_dir else "built-in generator", "variant": variant or "fp32"})
    return metrics

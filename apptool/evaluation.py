"""``apptool eval``: a bundle's metrics on a test split, computed on ONNX Runtime.

For a variant (``--variant fp16|int8``) the float32 graphs are evaluated on the
same split in the same run, so the report carries the metric change the
reduced precision costs, next to the size it saves.

Data given with ``--data`` is read as the bundle was trained (its
``data.format`` reader, or the task's own), and its class list must be the
bundle's: a reader that orders classes differently would otherwise be scored
against the wrong names, silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apptool.bundle import load_config
from apptool.config import check_data_options
from apptool.datasets import load_splits
from apptool.errors import ConfigError, DataError
from apptool.runtime import OnnxRunner

#: Config keys under which tasks keep the names their outputs index (Splits.info puts them there).
LABEL_KEYS = ("labels", "classes", "vocab")


def evaluate_bundle(
    bundle_dir: Path, data_dir: Path | None = None, variant: str = "", data_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The task's metrics for the bundle (or one of its exported variants) on the held-out split.

    ``data_options`` override the bundle's ``data`` section (``eval --set data.KEY=VALUE``).
    """
    from apptool.quantize import variant_dir, variant_info

    config, task = load_config(bundle_dir)
    if data_options:
        config = {**config, "data": {**config.get("data", {}), **check_data_options(task, data_options)}}
    if data_dir is not None and not Path(data_dir).is_dir():
        raise ConfigError(f"--data {data_dir}: no such folder")
    graph_dir = variant_dir(bundle_dir, variant) if variant else Path(bundle_dir)
    if variant and not graph_dir.is_dir():
        raise ConfigError(f"{bundle_dir}: no variant {variant!r} (run `apptool export {bundle_dir} --format {variant}`)")
    info = variant_info(bundle_dir, variant) if variant else {}
    splits = load_splits(task, config, Path(data_dir) if data_dir else None)
    check_labels(config, splits.info, str(data_dir) if data_dir else "the built-in generator")
    runner = OnnxRunner(graph_dir, task.name, config["graphs"], bundle_config=config)
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
        baseline = task.evaluate(
            OnnxRunner(Path(bundle_dir), task.name, config["graphs"], bundle_config=config), splits.test, config, None
        )
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


def check_labels(config: dict[str, Any], info: dict[str, Any], source: str) -> None:
    """Refuse data whose class names (or vocabulary) differ from the ones the bundle's outputs index."""
    for key in LABEL_KEYS:
        if key not in config or key not in info or list(info[key]) == list(config[key]):
            continue
        trained, got = [str(v) for v in config[key]], [str(v) for v in info[key]]
        if sorted(trained) == sorted(got):
            detail = "the same names in another order; the reader must keep the order of the bundle's config[" + repr(key) + "]"
        else:
            missing, extra = sorted(set(trained) - set(got)), sorted(set(got) - set(trained))
            detail = f"missing {missing[:5]}, unknown {extra[:5]}"
        raise DataError(f"{source}: its {key} differ from the bundle's ({detail}); scoring would compare against the wrong {key}")

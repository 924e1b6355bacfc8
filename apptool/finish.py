"""Turning trained weights into a finished bundle: export, held-out metrics, model card, config last.

config.json is written last: a directory without it is not a bundle, so a run
killed half-way never leaves something that looks complete.  Every file
carries the run's id (``config["run_id"]``), so files of two runs never load
as one bundle.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from apptool import __version__
from apptool.bundle import BUNDLE_FORMAT, CARD, CONFIG, atomic_write_bytes, atomic_write_json, plugin_version, update_metrics
from apptool.engine.checkpoint import CHECKPOINT
from apptool.onnx_export import export_onnx
from apptool.runtime import OnnxRunner
from apptool.task import Task


def finish_bundle(
    task: Task, model, config: dict[str, Any], out_dir: Path, test_set, training: dict[str, Any], stages: dict | None = None
) -> dict:
    """Export ONNX, evaluate it on ONNX Runtime over the test split, write metrics, card and config.

    ``stages`` holds what ``Task.prepare`` and ``Task.calibrate`` returned, by metrics.json section.
    """
    config = {**config, "bundle_format": BUNDLE_FORMAT, "apptool_version": __version__, "plugin_version": plugin_version(task)}
    export = export_onnx(task, model, config, out_dir)
    runner = OnnxRunner(out_dir, task.name, config["graphs"], bundle_config=config)
    test = task.evaluate(runner, test_set, config, out_dir)
    metrics = update_metrics(out_dir, test=test, export=export, training=training, provider=runner.provider, **(stages or {}))
    atomic_write_bytes(Path(out_dir) / CARD, model_card(task, config, metrics, Path(out_dir)).encode())
    atomic_write_json(Path(out_dir) / CONFIG, config)
    (Path(out_dir) / CHECKPOINT).unlink(missing_ok=True)
    return metrics


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(task: Task, config: dict[str, Any], metrics: dict[str, Any], bundle_dir: Path) -> str:
    """card.md: what the model is, what it was trained on, how well it does, how to run it."""
    test = metrics.get("test", {})
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in test.items() if isinstance(v, (int, float, str)))
    parity = metrics.get("export", {}).get("parity_max_abs_diff", {})
    training = metrics.get("training", {})
    model = config.get("model", {})
    return f"""# {task.title or task.name}

{task.description}

- task: `{task.name}` (plugin {config.get("plugin_version")}, apptool {config.get("apptool_version")})
- model: {", ".join(f"{k}={v}" for k, v in model.items()) or "task default"}
- trained on: {config.get("data_source")} ({training.get("train_samples")} training samples, preset `{config.get("preset")}`, seed {config.get("seed")})
- training: {training.get("epochs_run")} epochs in {training.get("seconds")} s on {training.get("device")}
- ONNX graphs: {", ".join(f"`{g}.onnx`" for g in config["graphs"])}; torch/ONNX Runtime max abs difference {", ".join(f"{g}: {d:.2e}" for g, d in parity.items())}

## Metrics on the held-out test split ({training.get("test_samples")} samples, ONNX Runtime)

| metric | value |
|---|---|
{rows}

## How to run

```
apptool predict {shlex.quote(str(bundle_dir))} INPUT... --json
apptool eval {shlex.quote(str(bundle_dir))} --json
```

Deployment needs only `onnxruntime` (or `onnxruntime-gpu`), numpy and OpenCV: the ONNX files carry this
bundle's config in their `metadata_props` (key `apptool.config`).
"""

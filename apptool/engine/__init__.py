"""Training a task end to end: data → model → fit → bundle (weights, ONNX, metrics, card)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from apptool.bundle import BUILT_IN_DATA, WEIGHTS, jsonable, read_state_metadata, save_state
from apptool.engine.progress import announce
from apptool.errors import ConfigError
from apptool.task import Task


def train(
    task: Task,
    config: dict[str, Any],
    out_dir: str | Path,
    data_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> Path:
    """Train ``task`` with ``config`` and write a complete bundle to ``out_dir``.

    Under torchrun every rank trains; only rank 0 writes the bundle.  The
    folder stops being a bundle (config.json removed) before anything of the
    new run is written, and becomes one again, of this run only, when it ends.
    """
    from apptool.bundle import begin_bundle
    from apptool.config import check_config
    from apptool.datasets import load_splits
    from apptool.engine import distributed
    from apptool.engine.trainer import Trainer, seed_everything
    from apptool.finish import finish_bundle

    check_config(task, config)
    out_dir = Path(out_dir)
    run_id = resumed_run(task, config, out_dir) if resume else None
    if distributed.is_main():
        begin_bundle(out_dir, fresh=run_id is None)
    config = {**config, "run_id": run_id or uuid.uuid4().hex}
    seed_everything(int(config["seed"]))
    splits = load_splits(task, config, Path(data_dir) if data_dir else None)
    config = {**config, **splits.info, **data_origin(data_dir)}
    model = task.build_model(config)
    started = time.perf_counter()
    trainer = Trainer(task, config, out_dir, progress=progress)
    try:
        if config["train"].get("fit", True):
            model, history = trainer.fit(model, splits.train, resume=resume)
        else:  # a ready-made model (shipped weights): nothing to fit, the bundle holds it as built
            model, history = model.eval(), []
            trainer.epochs, trainer.budget = 0, "none: train.fit is false, the model is used as built"
        if distributed.is_main():
            save_state(out_dir / WEIGHTS, model.state_dict(), {"task": task.name, "run_id": config["run_id"]})
            training = {
                "epochs": trainer.epochs,
                "budget": trainer.budget,
                "epochs_run": len(history),
                "seconds": round(time.perf_counter() - started, 1),
                "train_samples": len(splits.train),
                "test_samples": len(splits.test),
                "final_train_loss": history[-1]["train_loss"] if history else None,
                "final_val_loss": history[-1]["val_loss"] if history else None,
                "device": str(trainer.device),
                "world_size": distributed.world_size(),
            }
            announce(progress, f"{task.name}: exporting ONNX and evaluating on {len(splits.test)} held-out samples")
            finish_bundle(task, model, config, out_dir, splits.test, training, trainer.stage_results())
        distributed.barrier()  # ranks leave together: a rank tearing down gloo while rank 0 still writes can abort
    finally:
        distributed.teardown()
    return out_dir


def data_origin(data_dir: str | Path | None) -> dict[str, str | None]:
    """Where the training data came from: ``data_dir``, the absolute folder a plugin may read again (None: the
    built-in generator), and ``data_source``, the label the card shows (the folder as the user wrote it)."""
    if not data_dir:
        return {"data_dir": None, "data_source": BUILT_IN_DATA}
    return {"data_dir": str(Path(data_dir).resolve()), "data_source": str(data_dir)}


def resumed_run(task: Task, config: dict[str, Any], out_dir: Path) -> str | None:
    """The run id of the checkpoint ``--resume`` continues (None: no checkpoint, a fresh run).

    A checkpoint of another task or model is refused before any data loads.
    """
    from apptool.engine.checkpoint import CHECKPOINT

    path = out_dir / CHECKPOINT
    if not path.is_file():
        return None
    run = read_state_metadata(path).get("progress", {})
    for key, wanted in (("task", task.name), ("model", jsonable(config.get("model")))):
        if jsonable(run.get(key, wanted)) != wanted:
            raise ConfigError(
                f"--resume: {path} is from a run with {key} {run[key]!r}, this one has {wanted!r}; "
                "train without --resume or into another --out"
            )
    return run.get("run_id") or uuid.uuid4().hex

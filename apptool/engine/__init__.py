"""Training a task end to end: data → model → fit → bundle (weights, ONNX, metrics, card)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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

    Under torchrun every rank trains; only rank 0 writes the bundle.
    """
    from apptool.bundle import save_state
    from apptool.datasets import load_splits
    from apptool.engine import distributed
    from apptool.engine.trainer import Trainer, seed_everything
    from apptool.publish import finish_bundle

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(".*.tmp"):  # an atomic write a killed run never renamed into place
        stale.unlink()
    seed_everything(int(config["seed"]))
    splits = load_splits(task, config, Path(data_dir) if data_dir else None)
    config = {**config, **splits.info, "data_source": str(data_dir) if data_dir else "built-in generator"}
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
            save_state(out_dir / "weights.safetensors", model.state_dict(), {"task": task.name})
            training = {
                "epochs_run": len(history),
                "seconds": round(time.perf_counter() - started, 1),
                "train_samples": len(splits.train),
                "test_samples": len(splits.test),
                "final_train_loss": history[-1]["train_loss"] if history else None,
                "final_val_loss": history[-1]["val_loss"] if history else None,
                "device": str(trainer.device),
                "world_size": distributed.world_size(),
            }
            finish_bundle(task, model, config, out_dir, splits.test, training)
    finally:
        distributed.teardown()
    return out_dir

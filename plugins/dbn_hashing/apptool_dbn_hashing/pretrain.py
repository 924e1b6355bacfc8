"""The greedy stage: RBMs pretrained on the trainer's own training images, then unrolled into the model.

It runs inside ``build_model`` (see ``DbnHashingTask.build_model``), before the
core trainer fine-tunes the unrolled network with ``Task.loss``.  It uses the
same seeded train/validation split as the trainer, so the validation images
the trainer holds out are held out here too (their free energy is logged).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from apptool_dbn_hashing.data import ImageSet, to_model_input
from apptool_dbn_hashing.model import DBNHasher
from apptool_dbn_hashing.rbm import train_stack


@torch.no_grad()
def visible_vectors(model: DBNHasher, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """The model's visible vector for uint8 NHWC images (eval mode: no dropout, frozen batch-norm)."""
    was_training = model.training
    model.eval()
    out = [model.visible(torch.from_numpy(to_model_input(images[i : i + batch]))) for i in range(0, len(images), batch)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def trainer_split(train: ImageSet, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the trainer's training and validation parts (the core's own seeded split)."""
    from apptool.engine.trainer import split_validation

    fit, val = split_validation(train, float(config["train"]["val_fraction"]), int(config["seed"]))
    fit_idx = np.asarray(getattr(fit, "indices", range(len(train))))
    val_idx = np.asarray(val.indices) if val is not None else np.zeros(0, np.int64)
    return fit_idx, val_idx


def prepare(model: DBNHasher, train: ImageSet, config: dict[str, Any], progress: bool = True) -> dict[str, Any] | None:
    """Set the feature standardisation from the training part and, if ``model.pretrain``, pretrain and unroll the DBN."""
    fit_idx, val_idx = trainer_split(train, config)
    fit_v = visible_vectors(model, train.images[fit_idx])
    val_v = visible_vectors(model, train.images[val_idx])
    if hasattr(model, "encoder"):
        mean, std = fit_v.mean(0), fit_v.std(0).clamp_min(1e-6)
        model.feature_mean.copy_(mean)
        model.feature_std.copy_(std)
        fit_v, val_v = (fit_v - mean) / std, (val_v - mean) / std
    if not config["model"]["pretrain"]:
        return None
    started = time.perf_counter()
    sizes = [*config["model"]["hidden"], int(config["model"]["bits"])]
    rbms, layers = train_stack(
        fit_v, sizes, model.visible_kind, config["model"]["rbm"], int(config["seed"]), val_v if len(val_v) else None, progress
    )
    model.load_rbms(rbms)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "train_images": len(fit_idx),
        "held_out_images": len(val_idx),
        "layers": layers,
    }

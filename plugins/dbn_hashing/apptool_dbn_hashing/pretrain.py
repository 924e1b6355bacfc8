"""The greedy stage: RBMs pretrained on the trainer's own training images, then unrolled into the model.

``DbnHashingTask.prepare`` runs it with the core trainer's training and
validation parts, before the trainer fine-tunes the unrolled network with
``Task.loss``: the validation images the trainer holds out are held out here
too (their free energy is logged).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
import torch

from apptool.engine.trainer import epochs_for_budget
from apptool_dbn_hashing.data import to_model_input
from apptool_dbn_hashing.model import DBNHasher
from apptool_dbn_hashing.rbm import batch_size, train_stack


@torch.no_grad()
def visible_vectors(model: DBNHasher, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """The model's visible vector for uint8 NHWC images (eval mode: no dropout, frozen batch-norm)."""
    was_training = model.training
    model.eval()
    out = [model.visible(torch.from_numpy(to_model_input(images[i : i + batch]))) for i in range(0, len(images), batch)]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def images_of(part: Any) -> np.ndarray:
    """The uint8 images of the trainer's part of an ImageSet: a Subset of it, the whole set, or None (no images)."""
    if part is None:
        return np.zeros((0, 0, 0, 0), np.uint8)
    indices = getattr(part, "indices", None)
    return part.images if indices is None else part.dataset.images[np.asarray(indices, np.int64)]


def pretrain(model: DBNHasher, train: Any, val: Any, config: dict[str, Any], progress: bool = True) -> dict[str, Any] | None:
    """Set the feature standardisation from the training part and, if ``model.pretrain``, pretrain and unroll the DBN."""
    fit_images, val_images = images_of(train), images_of(val)
    fit_v = visible_vectors(model, fit_images)
    val_v = visible_vectors(model, val_images)
    if hasattr(model, "encoder"):
        mean, std = fit_v.mean(0), fit_v.std(0).clamp_min(1e-6)
        model.feature_mean.copy_(mean)
        model.feature_std.copy_(std)
        fit_v, val_v = (fit_v - mean) / std, (val_v - mean) / std
    if not config["model"]["pretrain"]:
        return None
    started = time.perf_counter()
    sizes = [*config["model"]["hidden"], int(config["model"]["bits"])]
    opts = config["model"]["rbm"]
    epochs, budget = epochs_for_budget(opts, len(fit_v) // batch_size(opts, len(fit_v)))
    if progress:
        print(f"RBM stack: {budget}", file=sys.stderr)
    rbms, layers = train_stack(
        fit_v, sizes, model.visible_kind, {**opts, "epochs": epochs}, int(config["seed"]), val_v if len(val_v) else None, progress
    )
    model.load_rbms(rbms)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "budget": budget,
        "train_images": len(fit_images),
        "held_out_images": len(val_images),
        "layers": layers,
    }

"""Segmentation metrics with the FCN definitions (Long, Shelhamer, Darrell 2015), in numpy.

With n_ij the number of pixels of class i predicted as class j and
t_i = sum_j n_ij: pixel accuracy = sum_i n_ii / sum_i t_i; class (mean)
accuracy = mean_i n_ii / t_i; mean IoU = mean_i n_ii / (t_i + sum_j n_ji - n_ii).
As in FCN's score code, a class absent from the ground truth is left out of the
class accuracy, and one absent from both ground truth and prediction is left
out of the mean IoU (its IoU is undefined, reported as None).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IGNORE = 255


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """n_classes x n_classes counts, rows = true class, columns = predicted; ignored pixels skipped."""
    truth, pred = np.asarray(truth).ravel(), np.asarray(pred).ravel()
    if truth.shape != pred.shape:
        raise ValueError(f"truth has {truth.size} pixels, prediction {pred.size}")
    valid = truth != IGNORE
    index = truth[valid].astype(np.int64) * n_classes + pred[valid].astype(np.int64)
    return np.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def scores(matrix: np.ndarray, classes: Sequence[str]) -> dict:
    """pixel_acc, class_acc, miou, per_class_iou and per_class_acc of a confusion matrix."""
    matrix = np.asarray(matrix, np.float64)
    diag, truth, predicted = np.diag(matrix), matrix.sum(1), matrix.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = diag / truth
        iou = diag / (truth + predicted - diag)
    total = matrix.sum()
    return {
        "pixel_acc": float(diag.sum() / total) if total else float("nan"),
        "class_acc": float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan"),
        "miou": float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        "per_class_iou": {name: (None if np.isnan(v) else round(float(v), 5)) for name, v in zip(classes, iou)},
        "per_class_acc": {name: (None if np.isnan(v) else round(float(v), 5)) for name, v in zip(classes, acc)},
    }

"""Classification metrics in numpy (the deployment path has no scikit-learn), matching scikit-learn's definitions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Counts[i, j] of true class i predicted as j."""
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return counts


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else float("nan")


def per_class_f1(counts: np.ndarray) -> np.ndarray:
    """F1 of every class from a confusion matrix; 0 where precision and recall are both undefined."""
    tp = np.diag(counts).astype(np.float64)
    denom = counts.sum(0) + counts.sum(1)  # 2TP + FP + FN = predicted + actual
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> float:
    """Unweighted mean F1 over the classes that occur in ``y_true`` or ``y_pred`` (sklearn's ``average='macro'``)."""
    counts = confusion_matrix(y_true, y_pred, n_classes)
    present = (counts.sum(0) + counts.sum(1)) > 0
    return float(per_class_f1(counts)[present].mean()) if present.any() else float("nan")

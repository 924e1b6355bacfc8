"""The confusion-matrix plot written next to the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MAX_SHOWN = 30


def plot_confusion(truth: np.ndarray, predicted: np.ndarray, labels: list[str], path: Path, result: dict[str, Any]) -> Path:
    """Rows true, columns predicted, over the classes that occur (the most frequent ``MAX_SHOWN`` of them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.bincount(np.concatenate([truth, predicted]), minlength=len(labels))
    shown = sorted(np.argsort(-counts, kind="stable")[: min(MAX_SHOWN, int((counts > 0).sum()))].tolist())
    index = {k: i for i, k in enumerate(shown)}
    matrix = np.zeros((len(shown), len(shown)), np.int64)
    for t, p in zip(truth.tolist(), predicted.tolist()):
        if t in index and p in index:
            matrix[index[t], index[p]] += 1
    size = 2.5 + 0.35 * len(shown)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    axes.imshow(matrix, cmap="Blues")
    names = [labels[k] for k in shown]
    axes.set_xticks(range(len(shown)), names, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(shown)), names, fontsize=8)
    for (row, column), value in np.ndenumerate(matrix):
        if value:
            colour = "white" if value > matrix.max() / 2 else "black"
            axes.text(column, row, str(value), ha="center", va="center", fontsize=7, color=colour)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"accuracy {result['accuracy']:.3f} · macro-F1 {result['macro_f1']:.3f} · top-5 {result['top5']:.3f}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

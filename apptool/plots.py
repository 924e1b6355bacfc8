"""Figures a task writes beside its metrics (numpy and matplotlib only: evaluation runs on the deployment path too)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: A confusion matrix shows at most this many classes (the most frequent ones); more would not be readable.
MAX_CLASSES = 30


def write_confusion_png(
    counts: np.ndarray, class_names: Sequence[str], path: Path, title: str = "", max_classes: int = MAX_CLASSES
) -> Path:
    """A confusion matrix as a PNG: rows true, columns predicted, coloured by the share of the true class, counts printed.

    With more than ``max_classes`` classes, only the most frequent ones (true
    or predicted, never one that does not occur) are shown, in their order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(counts, np.int64)
    frequency = counts.sum(0) + counts.sum(1)
    keep = len(class_names) if len(class_names) <= max_classes else min(max_classes, int((frequency > 0).sum()))
    shown = np.sort(np.argsort(-frequency, kind="stable")[:keep])
    counts = counts[np.ix_(shown, shown)]
    names = [str(class_names[k]) for k in shown]
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 1.0 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (colour: share of the true class)")
    for (row, column), value in np.ndenumerate(counts):
        if value:
            colour = "white" if rates[row, column] > 0.5 else "black"
            ax.text(column, row, str(value), ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

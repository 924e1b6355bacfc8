"""Training history as metrics.csv and a PNG of the curves."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from apptool.bundle import HISTORY, atomic_write_bytes

COLUMNS = ("epoch", "epochs", "train_loss", "val_loss", "lr", "seconds")  # epochs: the run's planned total


def write_history(out_dir: Path, history: list[dict], plot: bool = True) -> None:
    """metrics.csv (one row per epoch) and, with ``plot``, curves.png (losses against epochs; a fraction of a second)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(out_dir / HISTORY, buffer.getvalue().encode())
    if history and plot:
        atomic_write_bytes(out_dir / "curves.png", _plot(history))


def _plot(history: list[dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    fig, (loss_ax, lr_ax) = plt.subplots(1, 2, figsize=(9, 3.2))
    loss_ax.plot(epochs, [row["train_loss"] for row in history], label="train", marker="o")
    val = [row["val_loss"] for row in history]
    if any(v is not None for v in val):
        loss_ax.plot(epochs, val, label="validation", marker="o")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    loss_ax.legend()
    lr_ax.plot(epochs, [row["lr"] for row in history], marker="o")
    lr_ax.set(xlabel="epoch", ylabel="learning rate", title="learning rate")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()

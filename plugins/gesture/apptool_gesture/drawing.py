"""Pictures of sequences and of streaming probabilities (OpenCV and matplotlib; no torch)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

SIZE = 320
MARGIN = 24


def _time_colour(u: float) -> tuple[int, int, int]:
    """Blue at the start of a sequence to red at its end (RGB)."""
    return int(255 * u), 60, int(255 * (1 - u))


def draw_sequence(seq: np.ndarray, caption: str = "") -> np.ndarray:
    """An RGB picture of a sequence: a 2-channel one as the path it traces (y up), others as curves over time."""
    image = np.full((SIZE, SIZE, 3), 255, np.uint8)
    seq = np.asarray(seq, np.float64)
    if seq.ndim == 1:
        seq = seq[:, None]
    if seq.shape[1] == 2:
        lo, hi = seq.min(0), seq.max(0)
        span = max(float((hi - lo).max()), 1e-9)
        pts = (seq - (lo + hi) / 2) / span * (SIZE - 2 * MARGIN)
        pts = np.stack([SIZE / 2 + pts[:, 0], SIZE / 2 - pts[:, 1]], 1).round().astype(np.int32)
        for i in range(1, len(pts)):
            cv2.line(image, tuple(pts[i - 1]), tuple(pts[i]), _time_colour(i / len(pts)), 2, cv2.LINE_AA)
        cv2.circle(image, tuple(pts[0]), 5, _time_colour(0.0), -1, cv2.LINE_AA)
    else:
        t = np.linspace(MARGIN, SIZE - MARGIN, len(seq))
        lo, hi = seq.min(), seq.max()
        scaled = (seq - lo) / max(hi - lo, 1e-9)
        palette = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
        for d in range(seq.shape[1]):
            y = SIZE - MARGIN - scaled[:, d] * (SIZE - 2 * MARGIN - 20)
            pts = np.stack([t, y], 1).round().astype(np.int32)
            cv2.polylines(image, [pts], False, palette[d % len(palette)], 1, cv2.LINE_AA)
    if caption:
        cv2.putText(image, caption, (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return image


def plot_probabilities(probs: np.ndarray, class_names: Sequence[str], fps: float, title: str = "") -> np.ndarray:
    """RGB image of each class's streaming probability over the frames of a sequence."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = np.arange(len(probs)) / fps
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    order = np.argsort(-probs[-1])
    for rank, c in enumerate(order):
        ax.plot(
            seconds,
            probs[:, c],
            lw=2.2 if rank == 0 else 1.2,
            alpha=1.0 if rank < 3 else 0.45,
            label=f"{class_names[c]} {probs[-1, c]:.2f}",
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)" if fps else "frame")
    ax.set_ylabel("probability")
    ax.set_title(title or "class probabilities as the gesture unfolds (streaming)", fontsize=9, loc="right")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
    plt.close(fig)
    return image

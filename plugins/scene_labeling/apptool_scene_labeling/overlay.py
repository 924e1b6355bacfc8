"""Drawing a label map over its image, with a legend of the classes present and their areas (OpenCV)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from apptool_scene_labeling.data import palette


def colorize(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """The label map in the class colours (HxWx3 RGB uint8)."""
    return palette(n_classes)[np.minimum(labels, n_classes - 1)]


def draw_overlay(
    image: np.ndarray, labels: np.ndarray, classes: Sequence[str], area: dict[str, float], alpha: float = 0.55
) -> np.ndarray:
    """Image blended with the class colours, and a legend panel listing each class present and its area."""
    colors = colorize(labels, len(classes))
    blend = (image.astype(np.float32) * (1 - alpha) + colors.astype(np.float32) * alpha).astype(np.uint8)
    h = blend.shape[0]
    scale = max(h / 240.0, 0.5)  # legend text sized to the image
    row = int(22 * scale)
    present = [(name, area.get(name, 0.0)) for name in classes if area.get(name, 0.0) > 0]
    present.sort(key=lambda item: -item[1])
    panel_h = max(h, row * (len(present) + 1))
    panel = np.full((panel_h, int(170 * scale), 3), 255, np.uint8)
    table = palette(len(classes))
    for k, (name, share) in enumerate(present):
        y = int(row * (k + 0.5))
        color = tuple(int(c) for c in table[list(classes).index(name)])
        cv2.rectangle(panel, (int(6 * scale), y), (int(22 * scale), y + int(14 * scale)), color, -1)
        cv2.putText(
            panel,
            f"{name} {share * 100:.1f}%",
            (int(28 * scale), y + int(12 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.42 * scale,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    if panel_h > h:
        blend = np.concatenate([blend, np.full((panel_h - h, blend.shape[1], 3), 255, np.uint8)], 0)
    return np.concatenate([blend, panel], 1)

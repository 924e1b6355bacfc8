"""Images to network inputs, numpy and OpenCV only: the same code feeds torch in training and ONNX Runtime in deployment."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from apptool.images import to_rgb


def square_view(image: np.ndarray, size: int, rng: np.random.Generator | None = None, scale_min: float = 1.0) -> np.ndarray:
    """A ``size``x``size`` view: the centre square (shorter side to ``size``), or with ``rng`` a random square
    covering ``scale_min``..1 of it, at a random place (the training augmentation)."""
    height, width = image.shape[:2]
    side = min(height, width)
    if rng is not None:
        side = max(1, int(round(side * np.sqrt(rng.uniform(scale_min, 1.0)))))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    else:
        top, left = (height - side) // 2, (width - side) // 2
    crop = image[top : top + side, left : left + side]
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def normalize(view: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """HxWx3 uint8 RGB -> 3xHxW float32, scaled to [0, 1] and standardised with the encoder's mean/std."""
    scaled = view.astype(np.float32) / 255.0
    return np.ascontiguousarray(((scaled - np.float32(spec["mean"])) / np.float32(spec["std"])).transpose(2, 0, 1))


def prepare(image: np.ndarray, spec: dict[str, Any], name: str = "image") -> np.ndarray:
    """The evaluation input of any image array (grey, RGBA, 16-bit, float): centre view, normalised."""
    return normalize(square_view(to_rgb(image, name), int(spec["size"])), spec)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)

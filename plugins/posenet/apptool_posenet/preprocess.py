"""Image preprocessing shared by training, evaluation and deployment (numpy and OpenCV only).

As in PoseNet: the shorter side is resized to ``resize`` (256 in the paper),
then a ``crop`` x ``crop`` window (224) is cut out, at random for training
and from the centre for testing.  Pixels are normalised with ImageNet
statistics, the convention of timm backbones.  Training crops also get a
random exposure, contrast and colour cast (``jitter``), so that the network
places a camera by what it sees, not by the weather of the walk it was in.
"""

from __future__ import annotations

import cv2
import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def resize_short(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so that the shorter side is ``size`` pixels, keeping the aspect ratio."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    if scale == 1.0:
        return image
    target = (max(size, int(round(w * scale))), max(size, int(round(h * scale))))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, target, interpolation=interpolation)


def crop(image: np.ndarray, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """A ``size`` x ``size`` window: random when ``rng`` is given, else the centre one."""
    h, w = image.shape[:2]
    if rng is None:
        top, left = (h - size) // 2, (w - size) // 2
    else:
        top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return image[top : top + size, left : left + size]


def to_chw(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 crop as normalised float32 CHW."""
    return np.ascontiguousarray(((image.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1))


def prepare(image: np.ndarray, resize: int, size: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """RGB uint8 image of any size -> network input (3, size, size)."""
    return to_chw(crop(resize_short(image, resize), size, rng))


def jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Random brightness, contrast and per-channel gain of up to ``strength`` (0 returns the image)."""
    if strength <= 0:
        return image
    pixels = image.astype(np.float32)
    mean = pixels.mean()
    contrast = rng.uniform(1 - strength, 1 + strength)
    gain = rng.uniform(1 - strength, 1 + strength) * rng.uniform(1 - strength / 2, 1 + strength / 2, 3)
    return np.clip(((pixels - mean) * contrast + mean) * gain.astype(np.float32), 0, 255).astype(np.uint8)

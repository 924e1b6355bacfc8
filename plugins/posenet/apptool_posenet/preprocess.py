"""Image preprocessing shared by training, evaluation and deployment (numpy and OpenCV only).

As in PoseNet: the shorter side is resized to ``resize`` (256 in the paper),
then a ``crop`` x ``crop`` window (224) is cut out.  For training it is moved
at random by at most ``crop_shift`` of its side (the paper's crops roam the
whole image; a moved window is a turned camera, and the training label is
turned with it, see ``geometry.turned_towards``).  For testing, ``test_crops``
windows are spread along a wide frame's longer side, so that together they see
all of it, and their answers are averaged (the paper's dense evaluation).  Pixels are normalised with ImageNet
statistics, the convention of timm backbones, or with the statistics the
encoder's weights were trained with, as the bundle records them.  Training crops also get a
random exposure, contrast and colour cast (``jitter``), so that the network
places a camera by what it sees, not by the weather of the walk it was in.
"""

from __future__ import annotations

import cv2
import numpy as np

from apptool.imagenet import IMAGENET_MEAN, IMAGENET_STD


def pixel_stats(data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (0..255) the encoder's weights expect, as ``data`` records them; ImageNet's if it does not."""
    mean, std = data.get("mean", IMAGENET_MEAN), data.get("std", IMAGENET_STD)
    return np.asarray(mean, np.float32) * 255, np.asarray(std, np.float32) * 255


STATS = pixel_stats({})


def resize_short(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so that the shorter side is ``size`` pixels, keeping the aspect ratio."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    if scale == 1.0:
        return image
    target = (max(size, int(round(w * scale))), max(size, int(round(h * scale))))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, target, interpolation=interpolation)


def crop_corner(
    shape: tuple[int, ...], size: int, rng: np.random.Generator | None = None, shift: float | None = None
) -> tuple[int, int]:
    """(top, left) of a ``size`` x ``size`` window in an image of ``shape``: the centre one, or with ``rng`` a random one.

    ``shift`` bounds how far (a fraction of ``size``) a random window may move from the centre.  None: anywhere.
    """
    h, w = shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    if rng is not None:
        reach = max(h, w) if shift is None else int(round(shift * size))
        top += int(rng.integers(-min(top, reach), min(h - size - top, reach) + 1))
        left += int(rng.integers(-min(left, reach), min(w - size - left, reach) + 1))
    return top, left


def spread_corners(shape: tuple[int, ...], size: int, count: int) -> list[tuple[int, int]]:
    """(top, left) of ``count`` windows spread evenly along the image's longer side, centred across it.

    A square window of a wide frame sees half of it; the windows together see all of it.
    """
    h, w = shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    if count == 1:
        return [(top, left)]
    spread = np.linspace(0, max(h, w) - size, count).round().astype(int)
    return [(int(t), left) for t in spread] if h > w else [(top, int(x)) for x in spread]


def crop(image: np.ndarray, size: int, rng: np.random.Generator | None = None, shift: float | None = None) -> np.ndarray:
    """A ``size`` x ``size`` window of ``image`` (see ``crop_corner``)."""
    top, left = crop_corner(image.shape, size, rng, shift)
    return image[top : top + size, left : left + size]


def to_chw(image: np.ndarray, stats: tuple[np.ndarray, np.ndarray] = STATS) -> np.ndarray:
    """An RGB uint8 crop as float32 CHW, normalised by (mean, std) in 0..255."""
    return np.ascontiguousarray(((image.astype(np.float32) - stats[0]) / stats[1]).transpose(2, 0, 1))


def prepare(
    image: np.ndarray, resize: int, size: int, rng: np.random.Generator | None = None, stats: tuple = STATS
) -> np.ndarray:
    """RGB uint8 image of any size -> network input (3, size, size)."""
    return to_chw(crop(resize_short(image, resize), size, rng), stats)


def jitter(image: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Random brightness, contrast and per-channel gain of up to ``strength`` (0 returns the image)."""
    if strength <= 0:
        return image
    pixels = image.astype(np.float32)
    mean = pixels.mean()
    contrast = rng.uniform(1 - strength, 1 + strength)
    gain = rng.uniform(1 - strength, 1 + strength) * rng.uniform(1 - strength / 2, 1 + strength / 2, 3)
    return np.clip(((pixels - mean) * contrast + mean) * gain.astype(np.float32), 0, 255).astype(np.uint8)

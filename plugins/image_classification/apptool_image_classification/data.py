"""The built-in data: shapes and handwritten digits on real photographs, and a few photos with known ImageNet classes.

Without ``--data`` the task trains on eight classes — four shapes (circle,
square, triangle, star) and four scikit-learn handwritten digits (0-3),
upscaled — drawn in a random colour, size, place and angle on crops of
scikit-image's photographs.  Training images take their backgrounds from the
top half of each photo and their digits from the first 60 % of the digits set;
test images from the bottom half and the rest, so no pixel of a test image was
seen in training.  Everything is deterministic by seed and needs no download.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from apptool.datasets import ImageFolder
from apptool.imagenet import imagenet_class_names
from apptool.images import to_rgb

SHAPES = ("circle", "square", "triangle", "star")
DIGITS = (0, 1, 2, 3)
CLASSES = [*SHAPES, *(f"digit-{d}" for d in DIGITS)]
BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "brick", "grass", "gravel", "camera")
#: scikit-image photos whose ImageNet-1k class is plain from what they show (chosen by content): the shipped
#: classifier's sanity check.  Four photos: a spot check, not an estimate of ImageNet accuracy.
LABELLED_PHOTOS = {"chelsea": 285, "coffee": 967, "camera": 872, "clock": 892}
TRAIN_DIGITS = 0.6


@dataclass
class ImageArrays(ImageFolder):
    """An ImageFolder whose images are already in memory (``files`` are their display names)."""

    arrays: list[np.ndarray] = field(default_factory=list)

    def image(self, index: int) -> np.ndarray:
        return self.arrays[index]


def photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as HxWx3 uint8 RGB."""
    from skimage import data

    return to_rgb(getattr(data, name)())


@lru_cache(maxsize=2)
def _backgrounds(split: str) -> tuple[np.ndarray, ...]:
    """The top (train) or bottom (test) half of each background photo."""
    halves = []
    for name in BACKGROUNDS:
        image = photo(name)
        middle = image.shape[0] // 2
        halves.append(image[:middle] if split == "train" else image[middle:])
    return tuple(halves)


@lru_cache(maxsize=2)
def _digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    cut = int(len(digits.target) * TRAIN_DIGITS)
    part = slice(0, cut) if split == "train" else slice(cut, None)
    return digits.images[part], digits.target[part]


def _background(rng: np.random.Generator, split: str, size: int) -> np.ndarray:
    photos = _backgrounds(split)
    image = photos[rng.integers(len(photos))]
    height, width = image.shape[:2]
    side = int(min(height, width) * rng.uniform(0.3, 0.9))
    top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
    return cv2.resize(image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA)


def _colour(rng: np.random.Generator, background: np.ndarray) -> tuple[int, int, int]:
    """Of a few random colours, the one farthest from the background's mean: the object stays visible."""
    candidates = rng.integers(0, 256, size=(6, 3))
    far = np.argmax(np.linalg.norm(candidates - background.reshape(-1, 3).mean(0), axis=1))
    return tuple(int(c) for c in candidates[far])


def _star(radius: float, angle: float) -> np.ndarray:
    corners = np.arange(10) * np.pi / 5 + angle
    radii = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
    return np.stack([radii * np.cos(corners), radii * np.sin(corners)], 1)


def _polygon(sides: int, radius: float, angle: float) -> np.ndarray:
    corners = np.arange(sides) * 2 * np.pi / sides + angle
    return np.stack([radius * np.cos(corners), radius * np.sin(corners)], 1)


def render(label: int, rng: np.random.Generator, split: str, size: int) -> np.ndarray:
    """One image of class ``CLASSES[label]`` on a photo crop of ``split``'s half."""
    image = _background(rng, split, size)
    colour = _colour(rng, image)
    radius = size * rng.uniform(0.2, 0.33)
    centre = rng.uniform(radius + 1, size - radius - 1, size=2)
    angle = rng.uniform(0, 2 * np.pi)
    name = CLASSES[label]
    if name == "circle":
        cv2.circle(image, tuple(int(v) for v in centre), int(radius), colour, -1, cv2.LINE_AA)
    elif name in ("square", "triangle", "star"):
        outline = {"square": lambda: _polygon(4, radius, angle), "triangle": lambda: _polygon(3, radius, angle)}
        points = outline[name]() if name in outline else _star(radius, angle)
        cv2.fillPoly(image, [np.round(points + centre).astype(np.int32)], colour, cv2.LINE_AA)
    else:
        images, targets = _digits(split)
        pool = np.flatnonzero(targets == DIGITS[label - len(SHAPES)])
        glyph = images[pool[rng.integers(len(pool))]] / 16.0
        side = int(2 * radius)
        mask = cv2.resize(glyph, (side, side), interpolation=cv2.INTER_CUBIC).clip(0, 1)[:, :, None]
        top, left = int(centre[1] - radius), int(centre[0] - radius)
        region = image[top : top + side, left : left + side].astype(np.float32)
        image[top : top + side, left : left + side] = (region * (1 - mask) + np.float32(colour) * mask).astype(np.uint8)
    return image


def generate(split: str, per_class: int, size: int, seed: int) -> ImageArrays:
    """``per_class`` images of every class, in class order; deterministic by (seed, split)."""
    rng = np.random.default_rng((seed, 0 if split == "train" else 1))
    labels = [label for label in range(len(CLASSES)) for _ in range(per_class)]
    arrays = [render(label, rng, split, size) for label in labels]
    names = [f"generated/{split}/{CLASSES[label]}/{i}.png" for i, label in enumerate(labels)]
    return ImageArrays([Path(n) for n in names], labels, list(CLASSES), arrays=arrays)


def write_image_folder(root: Path, per_class_train: int, per_class_test: int, size: int, seed: int = 0) -> Path:
    """The built-in data as an ImageFolder on disk (``root/train/<class>/*.png``, ``root/test/...``)."""
    for split, per_class in (("train", per_class_train), ("test", per_class_test)):
        images = generate(split, per_class, size, seed)
        for index in range(len(images)):
            path = Path(root) / split / CLASSES[images.labels[index]] / f"{index:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), images.arrays[index][:, :, ::-1])
    return Path(root)


def labelled_photos() -> ImageArrays:
    """The scikit-image photos with known ImageNet classes, labelled by ImageNet index."""
    names = list(LABELLED_PHOTOS)
    return ImageArrays(
        [Path(f"skimage.data.{n}") for n in names],
        [LABELLED_PHOTOS[n] for n in names],
        imagenet_class_names(),
        arrays=[photo(n) for n in names],
    )

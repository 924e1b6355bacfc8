"""Image sets for hashing: scikit-learn's digits, a procedural shape set, and image folders.

Everything here is numpy/OpenCV, so evaluation and the demo run without torch.
A split holds images as uint8 HxWxC arrays at the model's input size; the
trainer gets float CHW arrays in [0, 1] from ``__getitem__``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from apptool.datasets import ImageFolder, read_image_folder
from apptool.errors import ConfigError
from apptool.images import to_rgb

SOURCES = ("digits", "shapes")
DEFAULT_SIZE = {"digits": 8, "shapes": 16, "folder": 32}
SHAPE_CLASSES = ("circle", "disk", "square", "box", "triangle", "plus", "cross", "hbars", "vbars", "bullseye")


@dataclass
class ImageSet:
    """Labelled images; a test split's ``database`` is the train split it is searched against."""

    images: np.ndarray  # uint8 [N, H, W, C]
    labels: np.ndarray  # int64 [N]
    classes: list[str]
    names: list[str] = field(default_factory=list)
    database: "ImageSet | None" = None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.int64]:
        image = self.images[index].astype(np.float32).transpose(2, 0, 1) / 255.0
        return image, self.labels[index]

    def inputs(self) -> np.ndarray:
        """All images as the model's float32 NCHW input."""
        return to_model_input(self.images)


def light_background(images: np.ndarray) -> bool:
    """True for dark ink on light paper (most scans): the pixel DBN then reads the images inverted, because its
    Bernoulli visibles model the ink as the rare "on" state; a bundle keeps the answer of its training split."""
    return bool(np.median(images) > 127)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC images → float32 NCHW in [0, 1] (the graph's input)."""
    return np.ascontiguousarray(images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0)


def prepare_image(image: np.ndarray, size: int, channels: int, name: str = "image") -> np.ndarray:
    """Any image array → uint8 size×size×channels (grey when channels is 1), as the model sees it."""
    rgb = to_rgb(image, name)
    resample = cv2.INTER_AREA if min(rgb.shape[:2]) >= size else cv2.INTER_LINEAR
    rgb = cv2.resize(rgb, (size, size), interpolation=resample)
    if channels == 1:
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None]
    return rgb


def display_image(image: np.ndarray, size: int = 96) -> np.ndarray:
    """A stored image enlarged (nearest neighbour, so pixels stay visible) as RGB for the demo."""
    rgb = to_rgb(image)
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_NEAREST)


# -- built-in data -------------------------------------------------------------------
def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 real 8×8 handwritten digits as uint8 NHW1 images, and their labels.

    scikit-learn (and scipy under it) takes seconds to import and only the
    built-in digits need it, so it is imported here, never on a plugin's load.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, :, :, None], bunch.target.astype(np.int64)


def digits(seed: int, test_fraction: float) -> tuple[ImageSet, ImageSet]:
    """scikit-learn's 1,797 real 8×8 handwritten digits, split per class (seeded) into database and queries."""
    from sklearn.model_selection import train_test_split  # see digit_images: scikit-learn only for the digits

    images, labels = digit_images()
    index = np.arange(len(labels))
    train_idx, test_idx = train_test_split(index, test_size=test_fraction, stratify=labels, random_state=seed)
    classes = [str(c) for c in range(10)]
    train = ImageSet(images[train_idx], labels[train_idx], classes, [f"digit{i}" for i in train_idx])
    test = ImageSet(images[test_idx], labels[test_idx], classes, [f"digit{i}" for i in test_idx])
    return train, test


def _polygon(center: np.ndarray, radius: float, angle: float, sides: int) -> np.ndarray:
    theta = angle + np.arange(sides) * 2 * np.pi / sides
    return np.stack([center[0] + radius * np.cos(theta), center[1] + radius * np.sin(theta)], 1)


def render_shape(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One grey ``size``×``size`` uint8 image of shape class ``kind``, drawn at 4× and area-downsampled."""
    scale = 4
    big = size * scale
    canvas = np.zeros((big, big), np.float32)
    radius = rng.uniform(0.26, 0.40) * big
    center = rng.uniform(radius + 2, big - radius - 2, size=2)
    thick = int(rng.integers(scale, 2 * scale + 1))
    ink = float(rng.uniform(0.65, 1.0))
    tilt = rng.uniform(-0.35, 0.35)
    shift = 16  # cv2 sub-pixel bits
    pt = lambda p: (int(round(p[0] * (1 << shift))), int(round(p[1] * (1 << shift))))  # noqa: E731
    c, r = pt(center), int(round(radius * (1 << shift)))
    if kind in ("circle", "disk", "bullseye"):
        cv2.circle(canvas, c, r, ink, -1 if kind == "disk" else thick, cv2.LINE_AA, shift)
        if kind == "bullseye":
            cv2.circle(canvas, c, r // 3, ink, -1, cv2.LINE_AA, shift)
    elif kind in ("square", "box", "triangle"):
        sides = 3 if kind == "triangle" else 4
        base = -np.pi / 2 if sides == 3 else np.pi / 4
        poly = np.array([pt(p) for p in _polygon(center, radius, base + tilt, sides)], np.int32)
        if kind == "box":
            cv2.fillPoly(canvas, [poly], ink, cv2.LINE_AA, shift)
        else:
            cv2.polylines(canvas, [poly], True, ink, thick, cv2.LINE_AA, shift)
    elif kind in ("plus", "cross"):
        angle = tilt + (np.pi / 4 if kind == "cross" else 0.0)
        for a in (angle, angle + np.pi / 2):
            d = radius * np.array([np.cos(a), np.sin(a)])
            cv2.line(canvas, pt(center - d), pt(center + d), ink, thick + scale, cv2.LINE_AA, shift)
    elif kind in ("hbars", "vbars"):
        n = int(rng.integers(2, 4))
        for k in range(n):
            offset = (k - (n - 1) / 2) * 2 * radius / n
            half = np.array([radius, 0.0]) if kind == "hbars" else np.array([0.0, radius])
            across = np.array([0.0, offset]) if kind == "hbars" else np.array([offset, 0.0])
            cv2.line(canvas, pt(center + across - half), pt(center + across + half), ink, thick, cv2.LINE_AA, shift)
    else:
        raise ConfigError(f"unknown shape class {kind!r}; expected one of {', '.join(SHAPE_CLASSES)}")
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    background = rng.uniform(0.0, 0.15) + rng.normal(0.0, 0.04, (size, size))
    return np.clip((small + background) * 255.0, 0, 255).astype(np.uint8)


def shapes(seed: int, size: int, per_class: int) -> ImageSet:
    """A procedural set of ten outline/filled/line shapes at random place, size, tilt, stroke and contrast."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(SHAPE_CLASSES)), per_class)
    labels = labels[rng.permutation(len(labels))]
    images = np.stack([render_shape(SHAPE_CLASSES[k], size, rng) for k in labels])[:, :, :, None]
    return ImageSet(images, labels.astype(np.int64), list(SHAPE_CLASSES), [f"shape{i}" for i in range(len(labels))])


# -- image folders: train/<class>/*, test/<class>/*, read by the core's ImageFolder reader ----------
def _image_set(folder: ImageFolder, size: int, channels: int) -> ImageSet:
    """Every image of one ImageFolder split decoded now, at the model's size (hashing searches them all)."""
    images = [prepare_image(folder.image(i), size, channels, str(folder.files[i])) for i in range(len(folder))]
    names = [f"{folder.classes[label]}/{path.name}" for path, label in zip(folder.files, folder.labels)]
    return ImageSet(np.stack(images), np.array(folder.labels, np.int64), folder.classes, names)


def read_folder(data_dir: Path, size: int, channels: int) -> tuple[ImageSet, ImageSet]:
    """The database (``train/<class>/*``) and the queries (``test/<class>/*``) of an image-folder layout."""
    train, test = read_image_folder(data_dir)
    return _image_set(train, size, channels), _image_set(test, size, channels)


def load_splits(data: dict[str, Any], seed: int, data_dir: Path | None) -> tuple[ImageSet, ImageSet]:
    """Database and query splits for the ``data`` config section (resolved by ``resolve_data``)."""
    if data_dir is not None:
        train, test = read_folder(data_dir, data["image_size"], data["channels"])
    elif data["source"] == "digits":
        train, test = digits(seed, float(data["test_fraction"]))
    else:
        train = shapes(seed, data["image_size"], int(data["per_class"]))
        test = shapes(seed + 1_000_003, data["image_size"], max(1, int(round(data["per_class"] * data["test_fraction"]))))
    test.database = train
    return train, test


def resolve_data(data: dict[str, Any], data_dir: Path | None) -> dict[str, Any]:
    """The data section with its source, image size and channels made explicit."""
    source = "folder" if data_dir is not None else data.get("source", "digits")
    if data_dir is None and source not in SOURCES:
        raise ConfigError(f"data.source = {source!r}; expected one of {', '.join(SOURCES)} (or pass --data DIR)")
    size = int(data.get("image_size") or DEFAULT_SIZE[source])
    channels = int(data.get("channels") or 1)
    if channels not in (1, 3) or size < 4:
        raise ConfigError(f"data.channels must be 1 or 3 and data.image_size at least 4 (got {channels}, {size})")
    if source == "digits" and (size, channels) != (8, 1):
        raise ConfigError("the digits are 8×8 grey images: leave data.image_size and data.channels unset")
    return {**data, "source": source, "image_size": size, "channels": channels}

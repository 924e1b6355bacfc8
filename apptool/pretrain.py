"""``apptool pretrain``: give a backbone general features offline, from what the machine already holds.

The source task is a many-class image classification, big and varied enough
that the network must learn edges, colours, textures and shapes rather than a
shortcut:

* procedural shapes (circle, square, triangle, ...) of any colour, size, place
  and angle on varied backgrounds;
* procedural textures (stripes, checks, dots, clouds, cells, bricks, ...) in
  random palettes, scales and orientations;
* crops of the real photos scikit-image ships (``skimage.data``): the class is
  the photo a crop comes from; held-out crops come from a strip of each photo
  that training never sees;
* scikit-learn's handwritten digits, drawn at random scale and colours on
  textured backgrounds (held-out digits are other writers' samples);

each under strong augmentation (flips, rotation, colour jitter, grey, blur,
noise, cut-out).  The source task is a map-style dataset whose samples are
drawn fresh every epoch from a seeded stream, so the model never sees the same
image twice and the result is reproducible given the seed; the core trainer
fits it (AMP on CUDA, DDP under torchrun, ``--resume``).  The bundle is a directory usable as
``--pretrained``: ``config.json`` (``{"kind": "backbone", "backbone": NAME, ...}``),
``weights.safetensors`` (the whole timm classifier under timm's own tensor
names, so any loader of timm weights reads it), ``metrics.json`` (held-out
source-task accuracy) and ``card.md``.
"""

from __future__ import annotations

import functools
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from apptool.errors import ConfigError
from apptool.imagenet import IMAGENET_MEAN, IMAGENET_STD

#: Training budget and image size per preset; ``quick`` takes a few minutes on two CPU cores.
#: ``epochs`` splits the ``steps`` into epochs: a checkpoint (what ``--resume`` continues) after each.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"steps": 12, "epochs": 2, "batch_size": 16, "size": 32, "test_per_class": 2, "lr": 2e-3},
    "quick": {"steps": 600, "epochs": 20, "batch_size": 64, "size": 64, "test_per_class": 20, "lr": 3e-3},
    "full": {"steps": 5000, "epochs": 50, "batch_size": 96, "size": 64, "test_per_class": 40, "lr": 3e-3},
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "crescent")
TEXTURES = ("stripes", "checks", "dots", "clouds", "cells", "bricks", "wood", "waves", "zigzag", "speckle")
PHOTOS = (
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "coins",
    "page",
    "text",
    "moon",
    "brick",
    "grass",
    "gravel",
    "retina",
    "clock",
    "cell",
    "stereo_motorcycle",
)
DIGITS = tuple(f"digit {d}" for d in range(10))
#: Share of each photo's width (its right-hand strip) kept for held-out crops.
PHOTO_TEST_STRIP = 0.25


def class_names() -> list[str]:
    """The source task's classes, in label order."""
    return (
        [f"shape: {s}" for s in SHAPES]
        + [f"texture: {t}" for t in TEXTURES]
        + [f"photo: {p}" for p in PHOTOS]
        + ["photo: faces (lfw)"]
        + list(DIGITS)
    )


# -- the source images ----------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _photos() -> list[np.ndarray]:
    """The scikit-image photos as RGB uint8 (greyscale ones repeated to three channels)."""
    import skimage.data

    photos = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = np.ascontiguousarray(image[..., :3]).astype(np.uint8)
        scale = 400 / max(image.shape[:2])  # crops of a smaller copy are as varied and far cheaper to resize
        if scale < 1:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        photos.append(image)
    return photos


@functools.lru_cache(maxsize=1)
def _faces() -> np.ndarray:
    import skimage.data

    return (np.asarray(skimage.data.lfw_subset()) * 255).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


def _colour(rng: np.random.Generator) -> np.ndarray:
    return rng.random(3).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    kind = rng.integers(3)
    if kind == 0:
        return np.broadcast_to(_colour(rng), (size, size, 3)).copy()
    if kind == 1:
        ramp = np.linspace(0, 1, size, dtype=np.float32)
        t = ramp[None, :, None] if rng.random() < 0.5 else ramp[:, None, None]
        return (1 - t) * _colour(rng) + t * _colour(rng)
    n = _noise(rng, size, int(rng.integers(2, 8)))[..., None]
    return np.clip((1 - n) * _colour(rng) + n * _colour(rng), 0, 1)


def _shape(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    image = _background(rng, size)
    scale = 4  # drawn large, then reduced: smooth edges at any size
    big = size * scale
    mask = np.zeros((big, big), np.uint8)
    r = rng.uniform(0.18, 0.42) * big
    cx, cy = rng.uniform(r, big - r, 2)
    angle = rng.uniform(0, 2 * np.pi)

    def polygon(n: int, radii) -> np.ndarray:
        t = angle + np.arange(n) * 2 * np.pi / n
        radii = np.resize(np.asarray(radii, np.float64), n)
        return np.int32(np.stack([cx + radii * np.cos(t), cy + radii * np.sin(t)], 1))

    if kind == "circle":
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1, -1)
    elif kind == "square":
        cv2.fillPoly(mask, [polygon(4, r)], 1)
    elif kind == "triangle":
        cv2.fillPoly(mask, [polygon(3, r)], 1)
    elif kind == "star":
        cv2.fillPoly(mask, [polygon(10, [r, 0.45 * r])], 1)
    elif kind == "hexagon":
        cv2.fillPoly(mask, [polygon(6, r)], 1)
    elif kind == "ring":
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1, max(int(0.25 * r), 2))
    elif kind == "cross":
        w = 0.3 * r
        bar = np.array([[-r, -w], [r, -w], [r, w], [-r, w]])
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        for arm in (bar, bar[:, ::-1]):
            cv2.fillPoly(mask, [np.int32(arm @ rot.T + [cx, cy])], 1)
    else:  # crescent: a disc minus an offset disc
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1, -1)
        offset = 0.45 * r
        cv2.circle(mask, (int(cx + offset * np.cos(angle)), int(cy + offset * np.sin(angle))), int(0.85 * r), 0, -1)
    alpha = cv2.resize(mask.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)[..., None]
    fill = _colour(rng)
    if rng.random() < 0.3:  # a textured fill
        fill = np.clip(fill * (0.6 + 0.8 * _noise(rng, size, int(rng.integers(3, 10)))[..., None]), 0, 1)
    return image * (1 - alpha) + fill * alpha


def _texture(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, np.pi)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    freq = rng.uniform(3, 9)
    if kind == "stripes":
        t = (np.sin(2 * np.pi * freq * u) > rng.uniform(-0.5, 0.5)).astype(np.float32)
    elif kind == "checks":
        t = ((np.floor(u * freq) + np.floor(v * freq)) % 2).astype(np.float32)
    elif kind == "dots":
        d = np.hypot((u * freq) % 1 - 0.5, (v * freq) % 1 - 0.5)
        t = (d < rng.uniform(0.15, 0.35)).astype(np.float32)
    elif kind == "clouds":
        t = sum(0.5**k * _noise(rng, size, 2 * 2**k) for k in range(4))
        t = (t - t.min()) / max(np.ptp(t), 1e-6)
    elif kind == "cells":
        points = rng.random((int(rng.integers(6, 20)), 2)).astype(np.float32)
        dist = np.sort(np.hypot(xx[..., None] - points[:, 0], yy[..., None] - points[:, 1]), axis=2)
        t = np.clip((dist[..., 1] - dist[..., 0]) * rng.uniform(8, 20), 0, 1)
    elif kind == "bricks":
        rows = np.floor(v * freq)
        shifted = u * freq / 2 + 0.5 * (rows % 2)
        mortar = ((v * freq) % 1 < 0.12) | (shifted % 1 < 0.06)
        t = np.where(mortar, 0.0, 0.7 + 0.3 * _noise(rng, size, 8)).astype(np.float32)
    elif kind == "wood":
        cx, cy = rng.uniform(-0.5, 1.5, 2)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * np.hypot(xx - cx, yy - cy) + 3 * _noise(rng, size, 4))
    elif kind == "waves":
        t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * u + rng.uniform(1, 3) * np.sin(2 * np.pi * v * rng.uniform(1, 3)))
    elif kind == "zigzag":
        t = (np.abs(((u * freq) % 1) - 0.5) * 2 > ((v * freq * 2) % 1)).astype(np.float32)
    else:  # speckle: fine grain, like sand or gravel
        t = np.clip(rng.normal(0.5, 0.25, (size, size)), 0, 1).astype(np.float32)
        t = cv2.GaussianBlur(t, (0, 0), rng.uniform(0.3, 1.0))
    t = t.astype(np.float32)[..., None]
    return np.clip((1 - t) * _colour(rng) + t * _colour(rng), 0, 1)


def _photo_crop(rng: np.random.Generator, size: int, index: int, test: bool) -> np.ndarray:
    photo = _photos()[index]
    h, w = photo.shape[:2]
    split = int(w * (1 - PHOTO_TEST_STRIP))
    x0, x1 = (split, w) if test else (0, split)
    side = int(min(h, x1 - x0) * rng.uniform(0.35, 1.0))
    side = max(side, 8)
    x = int(rng.integers(x0, x1 - side + 1))
    y = int(rng.integers(0, h - side + 1))
    crop = photo[y : y + side, x : x + side]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _face(rng: np.random.Generator, size: int, test: bool) -> np.ndarray:
    faces = _faces()
    cut = int(len(faces) * 0.8)
    face = faces[int(rng.integers(cut, len(faces))) if test else int(rng.integers(0, cut))]
    face = cv2.resize(face, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    return np.repeat(face[..., None], 3, axis=2) * (0.7 + 0.6 * _colour(rng))


def _digit(rng: np.random.Generator, size: int, digit: int, test: bool) -> np.ndarray:
    images, targets = _digits()
    cut = int(len(images) * 0.8)  # the last fifth (other writers) is held out
    pool = np.flatnonzero(targets[cut:] == digit) + cut if test else np.flatnonzero(targets[:cut] == digit)
    glyph = images[int(rng.choice(pool))]
    side = int(size * rng.uniform(0.5, 0.95))
    glyph = cv2.resize(glyph, (side, side), interpolation=cv2.INTER_CUBIC)
    alpha = np.zeros((size, size), np.float32)
    y, x = rng.integers(0, size - side + 1, 2)
    alpha[y : y + side, x : x + side] = np.clip(glyph, 0, 1)
    image = _background(rng, size)
    return image * (1 - alpha[..., None]) + _colour(rng) * alpha[..., None]


def _augment(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Strong augmentation: flip, rotation, colour jitter, grey, blur, noise and cut-out."""
    size = image.shape[0]
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-30, 30), rng.uniform(1.0, 1.2))
        image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (size, size), borderMode=cv2.BORDER_REFLECT)
    hsv = cv2.cvtColor(np.ascontiguousarray(image, np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-18, 18)) % 360
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.4), 0, 1)
    image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    image = (image - 0.5) * rng.uniform(0.7, 1.3) + 0.5 + rng.uniform(-0.15, 0.15)
    if rng.random() < 0.2:
        image = np.repeat(image.mean(2, keepdims=True), 3, axis=2)
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.2))
    if rng.random() < 0.3:
        image = image + rng.normal(0, rng.uniform(0.02, 0.08), image.shape).astype(np.float32)
    if rng.random() < 0.25:
        side = int(size * rng.uniform(0.15, 0.35))
        y, x = rng.integers(0, size - side + 1, 2)
        image[y : y + side, x : x + side] = rng.random(3)
    return np.clip(image, 0, 1).astype(np.float32)


def source_sample(rng: np.random.Generator, label: int, size: int, test: bool = False) -> np.ndarray:
    """One HxWx3 float32 image in [0, 1] of source class ``label`` (augmented unless ``test``)."""
    n_shapes, n_textures, n_photos = len(SHAPES), len(TEXTURES), len(PHOTOS)
    if label < n_shapes:
        image = _shape(rng, size, SHAPES[label])
    elif label < n_shapes + n_textures:
        image = _texture(rng, size, TEXTURES[label - n_shapes])
    elif label < n_shapes + n_textures + n_photos:
        image = _photo_crop(rng, size, label - n_shapes - n_textures, test)
    elif label == n_shapes + n_textures + n_photos:
        image = _face(rng, size, test)
    else:
        image = _digit(rng, size, label - n_shapes - n_textures - n_photos - 1, test)
    return np.clip(image, 0, 1).astype(np.float32) if test else _augment(rng, np.ascontiguousarray(image, np.float32))


class SourceImages:
    """The source task as a map-style dataset of ``length`` samples, drawn fresh every epoch from a seeded stream.

    Sample ``index`` of epoch ``epoch`` (the trainer announces it through
    ``set_epoch``) is rendered from the stream (seed, epoch, index), so no two
    epochs show the same image and a resumed run sees exactly the images an
    uninterrupted one would.  Labels cycle through the classes, so every epoch
    is balanced; ``labels`` is what the trainer's split reads.
    """

    def __init__(self, seed: int, length: int, size: int):
        self.seed, self.size, self.epoch = int(seed), int(size), 0
        self.labels = np.arange(int(length)) % len(class_names())

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        """A normalised CHW float32 image and its class."""
        label = int(self.labels[index])
        image = source_sample(np.random.default_rng([self.seed, 0, self.epoch, int(index)]), label, self.size)
        return _normalise(image[None])[0], label


def source_test_set(seed: int, per_class: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out set: ``per_class`` unaugmented images of every class, from held-out photo strips and digits."""
    rng = np.random.default_rng([int(seed), 1])
    labels = np.repeat(np.arange(len(class_names())), per_class)
    images = np.stack([source_sample(rng, int(k), size, test=True) for k in labels])
    return _normalise(images), labels.astype(np.int64)


def _normalise(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(
        ((images - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)).transpose(0, 3, 1, 2), np.float32
    )


# -- training ---------------------------------------------------------------------------
def _predict(model, images: np.ndarray, batch_size: int = 128) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        out = [model(torch.from_numpy(images[s : s + batch_size])).argmax(1).numpy() for s in range(0, len(images), batch_size)]
    model.train()
    return np.concatenate(out)


def _group_accuracy(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Held-out accuracy per family of source classes (shape, texture, photo, digit)."""
    families = np.array([name.split(":")[0].split(" ")[0] for name in class_names()])
    return {
        family: round(float((predicted == labels)[families[labels] == family].mean()), 4) for family in dict.fromkeys(families)
    }


def _card(backbone: str, settings: dict[str, Any], metrics: dict[str, Any], out_dir: Path) -> str:
    classes = class_names()
    return f"""# Pretrained backbone `{backbone}` (apptool pretrain, preset `{metrics["preset"]}`)

A timm `{backbone}` trained by `apptool pretrain` offline, from nothing but what the machine holds,
to give general image features for transfer learning (use it with `--pretrained {out_dir}`).

## What it was trained on

A {len(classes)}-class image classification at {settings["size"]}x{settings["size"]} pixels:

- {len(SHAPES)} procedural shape classes ({", ".join(SHAPES)}) of random colour, size, place and angle on flat, gradient or noise backgrounds;
- {len(TEXTURES)} procedural texture classes ({", ".join(TEXTURES)}) in random palettes, scales and orientations;
- {len(PHOTOS) + 1} photo classes: random crops of the photos scikit-image ships ({", ".join(PHOTOS)}; the class is the photo), and the LFW faces subset;
- 10 digit classes: scikit-learn's handwritten digits at random scale, place and colours.

Every training image is drawn fresh from a stream seeded by {metrics["seed"]} and strongly augmented (flips,
rotation, colour jitter, grey, blur, noise, cut-out): {metrics["steps"]} steps of {settings["batch_size"]} images
= {metrics["images_seen"]:,} images, AdamW (lr {settings["lr"]}, cosine schedule, label smoothing 0.1),
in {metrics["seconds"]} s on {metrics["device"]} ({metrics["cpu_seconds"]} s of CPU time over
{metrics["torch_threads"]} thread(s); the wall time depends on what else the machine runs).

## Held-out source-task accuracy

**{metrics["source_test_accuracy"]:.3f}** on {metrics["test_images"]} held-out images (chance {1 / len(classes):.3f});
by family: {", ".join(f"{k} {v:.3f}" for k, v in metrics["family_accuracy"].items())}.  Held out:
photo crops from a strip of each photo that training never sees ({PHOTO_TEST_STRIP:.0%} of its width), digits
and faces of held-out samples, unaugmented.

## Use

Inputs are RGB scaled to [0, 1] and normalised with the ImageNet mean {IMAGENET_MEAN} and std {IMAGENET_STD}, like timm's
pretrained models.  `weights.safetensors` holds the whole classifier under timm's tensor names;
`apptool.backbones.create_encoder("{backbone}", "{out_dir}")` builds the features-only encoder from it
(the classifier is dropped), and `apptool train TASK --backbone {backbone} --pretrained {out_dir}` fine-tunes it.
"""


class SourceTask:
    """The source task as the trainer sees it: a many-class classification of :class:`SourceImages`.

    It has the training side of a :class:`apptool.task.Task` only (name, config
    schema, batching, loss): a backbone bundle is no task bundle, it has no
    ONNX graphs, predict path or demo.
    """

    name = "pretrain"
    presets: dict[str, dict[str, Any]] = {}

    def default_config(self) -> dict[str, Any]:
        """The schema of a pretraining config: the backbone, the source images and the training settings it sets."""
        return {
            "model": {"backbone": "resnet10t"},
            "data": {"size": 64, "epoch_images": 1920, "test_per_class": 20},
            "train": {"optimizer": "adamw", "weight_decay": 0.05, "schedule": "cosine", "grad_clip": 5.0},
        }

    def config(self, backbone: str, preset: str, seed: int) -> dict[str, Any]:
        """The trainer's config for ``preset``: ``steps`` optimizer steps of ``batch_size`` images over ``epochs`` epochs."""
        from apptool.task import TRAIN_DEFAULTS, deep_merge

        settings = PRESETS[preset]
        steps_per_epoch = max(int(settings["steps"]) // int(settings["epochs"]), 1)
        run = {
            "model": {"backbone": backbone},
            "data": {
                "size": int(settings["size"]),
                "epoch_images": steps_per_epoch * int(settings["batch_size"]),
                "test_per_class": int(settings["test_per_class"]),
            },
            "train": {
                "epochs": int(settings["epochs"]),
                "batch_size": int(settings["batch_size"]),
                "lr": float(settings["lr"]),
                "warmup_epochs": 1 if int(settings["epochs"]) >= 10 else 0,  # a twentieth of the steps warm up
                "val_fraction": 0.0,  # the held-out images are their own set (source_test_set), never a training draw
            },
        }
        config = deep_merge(deep_merge({"train": dict(TRAIN_DEFAULTS), "seed": int(seed)}, self.default_config()), run)
        return {**config, "task": self.name, "preset": preset}

    def validate_config(self, config: dict[str, Any]) -> None:
        return None  # the presets are this module's own

    def collate(self, samples: list) -> Any:
        from torch.utils.data import default_collate

        return default_collate(samples)

    def prepare(self, model, train, val, config: dict[str, Any]) -> None:
        return None  # the backbone starts from random weights

    def calibrate(self, model, train, val, config: dict[str, Any]) -> None:
        return None  # nothing to fit after training

    def loss(self, model, batch):
        import torch.nn.functional as F

        images, labels = batch
        return F.cross_entropy(model(images), labels, label_smoothing=0.1)


def pretrain(backbone: str, out_dir: Path, preset: str = "quick", seed: int = 0, resume: bool = False) -> Path:
    """Pretrain timm ``backbone`` on the source task with the core trainer and write a backbone bundle to ``out_dir``.

    The trainer brings AMP on CUDA, DDP under torchrun (rank 0 writes the
    bundle) and ``resume`` from the checkpoint of the last finished epoch.  The
    bundle is what ``--pretrained`` (``apptool.backbones.create_encoder``) accepts.
    """
    import timm
    import torch

    from apptool import __version__
    from apptool.backbones import backbone_spec
    from apptool.bundle import CARD, CONFIG, METRICS, WEIGHTS, atomic_write_bytes, atomic_write_json, begin_bundle, save_state
    from apptool.engine import distributed, resumed_run
    from apptool.engine.checkpoint import CHECKPOINT
    from apptool.engine.trainer import Trainer, seed_everything

    if preset not in PRESETS:
        raise ConfigError(f"pretrain has no preset {preset!r}; choose one of {sorted(PRESETS)}")
    settings, task, out_dir = PRESETS[preset], SourceTask(), Path(out_dir)
    config = task.config(backbone, preset, seed)
    classes = class_names()
    arch, kwargs = backbone_spec(backbone)
    seed_everything(seed)
    try:
        model = timm.create_model(arch, pretrained=False, num_classes=len(classes), **kwargs)
    except RuntimeError as exc:
        raise ConfigError(f"unknown backbone {backbone!r}: {exc}") from None
    run_id = resumed_run(task, config, out_dir) if resume else None
    if distributed.is_main():
        begin_bundle(out_dir, fresh=run_id is None)
    config = {**config, "run_id": run_id or uuid.uuid4().hex}
    data = config["data"]
    started, cpu_started = time.perf_counter(), time.process_time()
    trainer = Trainer(task, config, out_dir)
    try:
        model, history = trainer.fit(model, SourceImages(seed, data["epoch_images"], data["size"]), resume=resume)
        if distributed.is_main():
            test_images, test_labels = source_test_set(seed, data["test_per_class"], data["size"])
            predicted = _predict(model, test_images)
            steps = len(history) * -(-data["epoch_images"] // config["train"]["batch_size"])
            metrics = {
                "source_test_accuracy": float((predicted == test_labels).mean()),
                "test_images": int(len(test_labels)),
                "chance": 1 / len(classes),
                "family_accuracy": _group_accuracy(predicted, test_labels),
                "steps": steps,
                "images_seen": len(history) * data["epoch_images"],
                "seconds": round(time.perf_counter() - started, 1),
                "preset": preset,
                "seed": seed,
                "cpu_seconds": round(time.process_time() - cpu_started, 1),
                "device": str(trainer.device),
                "world_size": distributed.world_size(),
                "torch_threads": torch.get_num_threads(),
                "history": history,
            }
            bundle_config = {
                "kind": "backbone",
                "backbone": backbone,
                "timm_model": arch,
                "timm_kwargs": kwargs,
                "in_chans": 3,
                "num_classes": len(classes),
                "classes": classes,
                "input_size": [3, data["size"], data["size"]],
                "mean": list(IMAGENET_MEAN),
                "std": list(IMAGENET_STD),
                "preset": preset,
                "seed": seed,
                "run_id": config["run_id"],
                "settings": settings,
                "apptool_version": __version__,
                "source_task": "procedural shapes and textures, scikit-image photo crops, scikit-learn digits",
            }
            save_state(out_dir / WEIGHTS, model.state_dict(), {"kind": "backbone", "backbone": backbone})
            atomic_write_json(out_dir / METRICS, metrics)
            atomic_write_bytes(out_dir / CARD, _card(backbone, settings, metrics, out_dir).encode())
            atomic_write_json(out_dir / CONFIG, bundle_config)  # last: a directory without it is not a bundle
            (out_dir / CHECKPOINT).unlink(missing_ok=True)
        distributed.barrier()
    finally:
        distributed.teardown()
    return out_dir

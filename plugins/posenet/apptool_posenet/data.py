"""Pose data sets: the built-in rendered walks or a Cambridge Landmarks folder (numpy only).

A :class:`PoseDataset` is what the trainer iterates (``(image, target)`` with
the position normalised by training-set statistics) and what ``evaluate``
reads (raw images and poses through ``image(i)`` and ``poses``).  The test
set keeps a reference to the training set, so the nearest-neighbour baseline
is measured on the same split as the model.

Every augmentation draw of a training item comes from (seed, epoch, index)
and nothing else, so a run resumed at epoch k sees exactly the crops and
colours the uninterrupted run saw; no random state needs saving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from apptool.errors import ConfigError, DataError, InputError
from apptool.imagenet import normalization
from apptool.images import read_image
from apptool_posenet.cambridge import SPLIT_FILES, read_pose_file, write_split
from apptool_posenet.generator import render_sequence
from apptool_posenet.geometry import intrinsics, turned_towards
from apptool_posenet.preprocess import crop_corner, jitter, pixel_stats, prepare, resize_short, to_chw
from apptool_posenet.scene import footprints

MAX_TRAJECTORY_POINTS = 300
MIN_INPUT = 32  # the encoder's output stride


class PoseDataset:
    """Images with poses (rows x, y, z, qw, qx, qy, qz); items are (3xSxS float32, 7 float32 target)."""

    def __init__(
        self,
        poses: np.ndarray,
        names: list[str],
        config: dict[str, Any],
        stats: dict[str, Any],
        train: bool,
        images: list[np.ndarray] | None = None,
        paths: list[Path] | None = None,
        sources: list[str] | None = None,
        reference: PoseDataset | None = None,
    ):
        self.poses = np.asarray(poses, np.float64)
        self.names = names
        self.resize, self.size = int(config["data"]["resize"]), int(config["data"]["crop"])
        self.mean = np.asarray(stats["mean"], np.float64)
        self.scale = float(stats["scale"])
        self.train = train
        self.jitter = float(config["data"].get("color_jitter", 0.0))
        self.shift = float(config["data"].get("crop_shift", 1.0))
        self.turn_crops = bool(config["data"].get("turn_crops", False))
        self.hfov_deg = float(config["data"]["hfov_deg"])
        self.stats = pixel_stats(config["data"])
        self.seed, self.epoch = int(config["seed"]), 0
        self._images = images
        self._paths = paths
        self._sources = sources
        self._cache: dict[int, np.ndarray] = {}
        self.reference = reference

    def set_epoch(self, epoch: int) -> None:
        """The trainer calls this before each epoch: augmentation draws from (seed, epoch, index) only."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.poses)

    def image(self, index: int) -> np.ndarray:
        """The RGB uint8 image, shorter side already at ``resize`` (files are decoded once, then cached)."""
        if self._images is not None:
            return self._images[index]
        if index not in self._cache:
            try:
                self._cache[index] = resize_short(read_image(self._paths[index]), self.resize)
            except InputError as exc:
                raise DataError(f"{self._sources[index]}: {exc}") from None
        return self._cache[index]

    def target(self, index: int) -> np.ndarray:
        """Normalised position and unit quaternion (w >= 0): what the network regresses."""
        pose = self.poses[index]
        return np.concatenate([(pose[:3] - self.mean) / self.scale, pose[3:]]).astype(np.float32)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.train:
            return prepare(self.image(index), self.resize, self.size, stats=self.stats), self.target(index)
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        image = resize_short(self.image(index), self.resize)
        top, left = crop_corner(image.shape, self.size, rng, self.shift)
        window = image[top : top + self.size, left : left + self.size]
        target = self.target(index)
        if self.turn_crops:  # the window shows the camera turned towards its centre: so does its label
            h, w = image.shape[:2]
            dx, dy = left + self.size / 2 - w / 2, top + self.size / 2 - h / 2
            focal = intrinsics(w, h, self.hfov_deg)[0, 0]
            target[3:] = turned_towards(self.poses[index, 3:], dx, dy, focal)
        return to_chw(jitter(window, rng, self.jitter), self.stats), target


def pose_stats(poses: np.ndarray) -> dict[str, Any]:
    """Centre and one isotropic scale (RMS distance to the centre) of the training positions."""
    xyz = poses[:, :3]
    mean = xyz.mean(axis=0)
    scale = float(np.sqrt(((xyz - mean) ** 2).sum(axis=1).mean())) or 1.0
    return {"mean": mean.tolist(), "scale": scale}


def scene_info(train_poses: np.ndarray, source: str) -> dict[str, Any]:
    """Scene size and the top-down map frame, the training trajectory and (built-in scene) building outlines."""
    xyz = train_poses[:, :3]
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    if source == "builtin":
        axes, origin = np.eye(3)[:2], np.zeros(3)
    else:  # a real scene has no known up axis: map onto the plane of largest spread of the camera centres
        origin = xyz.mean(axis=0)
        axes = np.linalg.svd(xyz - origin, full_matrices=False)[2][:2] if len(xyz) >= 3 else np.eye(3)[:2]
    flat = (xyz - origin) @ axes.T
    step = max(1, int(np.ceil(len(xyz) / MAX_TRAJECTORY_POINTS)))
    info = {
        "source": source,
        "extent_m": float(np.linalg.norm(hi - lo)),
        "size_m": (flat.max(axis=0) - flat.min(axis=0)).round(2).tolist(),
        "map_axes": axes.round(6).tolist(),
        "map_origin": origin.round(6).tolist(),
        "trajectory": flat[::step].round(2).tolist(),
        "footprints": footprints() if source == "builtin" else [],
    }
    return info


def _builtin(config: dict[str, Any]):
    data = config["data"]
    size = tuple(int(v) for v in data["render_size"])
    if min(size) < int(data["resize"]):
        raise DataError(f"data.render_size {list(size)} is smaller than data.resize {data['resize']}")
    splits = {}
    first = {"train": 1, "test": int(data["train_sequences"]) + 1}  # sequence numbers, as Cambridge numbers them
    for split, count in (("train", data["train_sequences"]), ("test", data["test_sequences"])):
        images, poses, names = [], [], []
        for i in range(int(count)):
            seq = render_sequence(
                f"seq{i + 1}", int(config["seed"]), split, i, int(data["frames_per_sequence"]), size, float(data["hfov_deg"])
            )
            images += [resize_short(im, int(data["resize"])) for im in seq.images]
            poses.append(seq.poses)
            names += [f"seq{first[split] + i}/frame{j + 1:05d}.png" for j in range(len(seq.images))]
        splits[split] = (images, np.concatenate(poses), names)
    return splits


def rendered_short_side(data: dict[str, Any]) -> int:
    """The shorter side of the built-in generator's frames."""
    return min(int(v) for v in data["render_size"])


def input_size(data: dict[str, Any], short_side: int) -> tuple[int, int]:
    """(resize, crop) for images of this shorter side under ``data`` (see ``input_settings``)."""
    resize = int(data["resize"]) or min(int(short_side), int(data["max_resize"]))
    size = int(data["crop"]) or int(round(resize * 7 / 8))
    if size > resize:
        raise ConfigError(f"data.crop {size} is larger than data.resize {resize}")
    if size < MIN_INPUT:
        raise DataError(f"images of shorter side {short_side} px give a {size} px input; the encoder needs at least {MIN_INPUT}")
    return resize, size


def input_settings(config: dict[str, Any], short_side: int) -> dict[str, Any]:
    """``config["data"]`` with ``resize``, ``crop`` and the pixel statistics fixed for the bundle.

    ``resize`` and ``crop`` as configured, or (0) from the images: the shorter side, capped at
    ``max_resize`` (no upsampling: it adds no detail, only cost), and a crop of 7/8 of it, the
    paper's 224 of 256.  Mean and std are the ones the encoder's weights were trained with.
    """
    data, model = config["data"], config["model"]
    resize, size = input_size(data, short_side)
    if "mean" in data:  # a bundle being evaluated keeps what it was trained with
        return {**data, "resize": resize, "crop": size}
    mean, std = normalization(model["backbone"], model.get("pretrained"))
    return {**data, "resize": resize, "crop": size, "mean": list(mean), "std": list(std)}


def load_splits(config: dict[str, Any], data_dir: Path | None) -> tuple[PoseDataset, PoseDataset, dict[str, Any]]:
    """Train and test sets (the test set referencing the training set) and the info the bundle keeps."""
    if data_dir is None:
        config = {**config, "data": input_settings(config, rendered_short_side(config["data"]))}
        raw = _builtin(config)
        source = "builtin"
        train_poses = raw["train"][1]
    else:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise DataError(f"{data_dir}: no such folder")
        lists = {split: read_pose_file(data_dir, name) for split, name in SPLIT_FILES.items()}
        try:
            first = read_image(lists["train"].paths[0])
        except InputError as exc:
            raise DataError(f"{lists['train'].sources[0]}: {exc}") from None
        config = {**config, "data": input_settings(config, min(first.shape[:2]))}
        source = "cambridge"
        train_poses = lists["train"].poses
    stats = pose_stats(train_poses)
    sets = {}
    for split in ("train", "test"):
        is_train = split == "train"
        if data_dir is None:
            images, poses, names = raw[split]
            sets[split] = PoseDataset(poses, names, config, stats, is_train, images=images)
        else:
            found = lists[split]
            names = [str(p.relative_to(data_dir.resolve())) for p in found.paths]
            sets[split] = PoseDataset(found.poses, names, config, stats, is_train, paths=found.paths, sources=found.sources)
    sets["test"].reference = sets["train"]
    info = {"pose_stats": stats, "scene": scene_info(train_poses, source), "data": config["data"]}
    return sets["train"], sets["test"], info


def write_cambridge(folder: Path, config: dict[str, Any]) -> Path:
    """Save the built-in walks in the Cambridge Landmarks layout (PNG frames per sequence, two pose lists)."""
    config = {**config, "data": input_settings(config, rendered_short_side(config["data"]))}
    for split, (images, poses, names) in _builtin(config).items():
        write_split(folder, split, names, images, poses)
    return Path(folder)

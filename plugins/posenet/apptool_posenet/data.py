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
from apptool_posenet.nvm import FILE as NVM_FILE
from apptool_posenet.nvm import image_key, read_nvm
from apptool_posenet.preprocess import crop_corner, jitter, pixel_stats, prepare, resize_short, to_chw
from apptool_posenet.scene import footprints, landmark
from apptool_posenet.structure import scene_structure, write_structure

MAX_TRAJECTORY_POINTS = 300
MIN_INPUT = 32  # the encoder's output stride
REPROJECTION_POINTS = 64  # per training image, for the geometric loss
#: Camera centres of the NVM and of dataset_train.txt further apart than this share of the scene are two frames.
MAX_FRAME_MISMATCH = 0.01


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
        structure: tuple[np.ndarray, list[np.ndarray]] | None = None,
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
        self.points, self.seen = (None, None) if structure is None else ((structure[0] - self.mean) / self.scale, structure[1])

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

    def __getitem__(self, index: int) -> tuple[np.ndarray, ...]:
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
        item = to_chw(jitter(window, rng, self.jitter), self.stats), target
        return item if self.points is None else (*item, self.seen_points(index, rng))

    def seen_points(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """``REPROJECTION_POINTS`` rows (x, y, z normalised, weight) drawn from the points this image sees (weight 0: none)."""
        ids = self.seen[index]
        rows = np.zeros((REPROJECTION_POINTS, 4), np.float32)
        if len(ids):
            rows[:, :3] = self.points[rng.choice(ids, REPROJECTION_POINTS, replace=len(ids) < REPROJECTION_POINTS)]
            rows[:, 3] = 1.0
        return rows


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


def _builtin_structure(config: dict[str, Any], poses: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    data = config["data"]
    size = tuple(int(v) for v in data["render_size"])
    return scene_structure(landmark(), poses, size, float(data["hfov_deg"]), int(config["seed"]))


def read_structure(data_dir: Path, names: list[str], poses: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The scene's points and, per training image, those it sees, from ``DIR/reconstruction.nvm``.

    Refused when the file is missing, names none of the training images, or places their
    cameras elsewhere than ``dataset_train.txt`` does (another frame: the loss would be wrong).
    """
    path = Path(data_dir) / NVM_FILE
    if not path.is_file():
        raise DataError(
            f"{path}: not there; model.reprojection_weight > 0 needs the scene's 3D points "
            "(a Cambridge Landmarks folder ships them), or set it to 0"
        )
    model = read_nvm(path)
    cameras = {key: i for i, key in enumerate(model.keys)}
    matched = [cameras.get(image_key(name)) for name in names]
    found = [(row, cam) for row, cam in enumerate(matched) if cam is not None]
    if not found:
        raise DataError(f"{path}: none of its {len(model.keys)} cameras is an image of {SPLIT_FILES['train']}")
    rows, cams = map(list, zip(*found))
    apart = np.median(np.linalg.norm(model.centres[cams] - poses[rows, :3], axis=1))
    extent = np.ptp(poses[:, :3], axis=0).max()
    if apart > MAX_FRAME_MISMATCH * extent:
        raise DataError(
            f"{path}: its cameras lie a median {apart:.3g} m from where {SPLIT_FILES['train']} puts them "
            f"(scene {extent:.3g} m): not the frame of the pose list"
        )
    empty = np.zeros(0, np.int64)
    return model.points, [empty if cam is None else model.seen[cam] for cam in matched]


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
            inputs = {"images": images}
        else:
            found = lists[split]
            poses, names = found.poses, [str(p.relative_to(data_dir.resolve())) for p in found.paths]
            inputs = {"paths": found.paths, "sources": found.sources}
        if is_train and float(config["model"].get("reprojection_weight", 0.0)) > 0:
            inputs["structure"] = (
                _builtin_structure(config, poses) if data_dir is None else read_structure(data_dir, names, poses)
            )
        sets[split] = PoseDataset(poses, names, config, stats, is_train, **inputs)
    sets["test"].reference = sets["train"]
    info = {"pose_stats": stats, "scene": scene_info(train_poses, source), "data": config["data"]}
    return sets["train"], sets["test"], info


def write_cambridge(folder: Path, config: dict[str, Any]) -> Path:
    """Save the built-in walks in the Cambridge Landmarks layout (PNG frames per sequence, two pose lists, the NVM)."""
    config = {**config, "data": input_settings(config, rendered_short_side(config["data"]))}
    splits = _builtin(config)
    for split, (images, poses, names) in splits.items():
        write_split(folder, split, names, images, poses)
    names = [name for _, _, split_names in splits.values() for name in split_names]
    poses = np.concatenate([split_poses for _, split_poses, _ in splits.values()])
    height, width = splits["train"][0][0].shape[:2]  # the frames as saved, at data.resize
    write_structure(folder, landmark(), names, poses, (width, height), float(config["data"]["hfov_deg"]), int(config["seed"]))
    return Path(folder)

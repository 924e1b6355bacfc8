"""Steering data: preprocessing, the procedural generator, and the Udacity ``driving_log.csv`` reader.

Everything here is numpy/OpenCV: datasets are plain map-style sequences of
``(image, steering)`` pairs (CHW float32, float32) that torch's DataLoader
batches, and that ``evaluate`` iterates without torch.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from apptool.datasets import read_text
from apptool.errors import DataError
from apptool.imagenet import normalization
from apptool.images import read_image
from apptool.paths import inside_data_folder
from apptool_steering import road, vehicle

COLUMNS = ("center", "left", "right", "steering", "throttle", "brake", "speed")
#: Arc length kept clear at both ends of a track when sampling poses (the view reaches 90 m ahead).
MARGIN = 10.0


# -- preprocessing (shared by training, predict, eval and the simulator) ----------
def input_spec(config: dict[str, Any], mean=None, std=None) -> dict[str, Any]:
    """How images become network inputs: crop, size, colour space and normalisation.

    PilotNet reads YUV standardised by training-set statistics; a timm backbone
    reads RGB standardised as its weights expect (``apptool.imagenet.normalization``).
    """
    data, model = config["data"], config["model"]
    pilotnet = model.get("backbone", "pilotnet") == "pilotnet"
    if not pilotnet:
        mean, std = ([255.0 * v for v in stats] for stats in normalization(model["backbone"], model.get("pretrained")))
    return {
        "color": "yuv" if pilotnet else "rgb",
        "size": [int(v) for v in model.get("input_size", (66, 200))],
        "crop": [float(data["crop_top"]), float(data["crop_bottom"])],
        "mean": [float(v) for v in (mean if mean is not None else (128.0, 128.0, 128.0))],
        "std": [float(v) for v in (std if std is not None else (64.0, 64.0, 64.0))],
    }


def network_rows(spec: dict[str, Any], height: int) -> tuple[int, int]:
    """The band of image rows the network sees: the sky and the hood are cropped away."""
    top, bottom = spec["crop"]
    r0, r1 = int(round(height * top)), height - int(round(height * bottom))
    return (r0, r1) if r1 - r0 >= 2 else (0, height)


def to_network_pixels(image: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Crop the sky and hood away, resize to the network size, convert colour: HxWx3 uint8."""
    r0, r1 = network_rows(spec, image.shape[0])
    rows, cols = spec["size"]
    small = cv2.resize(image[r0:r1], (cols, rows), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2YUV) if spec["color"] == "yuv" else small


def normalise(pixels: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """HxWx3 (or NxHxWx3) uint8 network pixels as standardised CHW (NCHW) float32.

    The bytes are moved to CHW first and the arithmetic writes straight into the
    result: a seventh of the time of converting, then transposing the floats, same values.
    """
    mean = np.asarray(spec["mean"], np.float32).reshape(3, 1, 1)
    std = np.asarray(spec["std"], np.float32).reshape(3, 1, 1)
    x = np.subtract(np.ascontiguousarray(np.moveaxis(pixels, -1, -3)), mean, dtype=np.float32)
    x /= std
    return x


def preprocess(image: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """An RGB uint8 image as the network's CHW float32 input."""
    return normalise(to_network_pixels(image, spec), spec)


def preprocess_batch(images: list[np.ndarray], spec: dict[str, Any]) -> np.ndarray:
    """RGB uint8 images as one NCHW float32 batch: stacked as bytes, standardised once."""
    return normalise(np.stack([to_network_pixels(image, spec) for image in images]), spec)


# -- the procedural generator ----------------------------------------------------
SPLIT_STREAMS = {"train": 0, "test": 1, "sim": 2, "samples": 3}


def split_seed(config: dict[str, Any], split: str, *extra: int) -> list[int]:
    """Seed sequence of one split: train, test, simulator and samples never share a stream."""
    return [int(config.get("seed", 0)), SPLIT_STREAMS[split], *extra]


@functools.lru_cache(maxsize=256)
def cached_track(seed: tuple[int, ...], length: float, min_radius: float) -> road.Track:
    return road.make_track(list(seed), length, min_radius)


def random_frame(
    track: road.Track, rng: np.random.Generator, data: dict[str, Any], rows: tuple[int, int] | None = None
) -> tuple[np.ndarray, float]:
    """One camera frame at a random pose on ``track`` and the expert's steering for it (``rows``: see render).

    Half the poses are near the centre, half spread over the whole recovery
    range (``offset_m``, ``yaw_deg``), so the network sees both how to hold the
    lane and how to return to it.
    """
    s = rng.uniform(MARGIN, track.length - road.VIEW_AHEAD - MARGIN)
    if rng.random() < 0.5:
        offset, yaw = rng.normal(0, data["offset_m"] / 4), rng.normal(0, data["yaw_deg"] / 4)
    else:
        offset, yaw = rng.uniform(-1, 1) * data["offset_m"], rng.uniform(-1, 1) * data["yaw_deg"]
    pose = track.pose(s, offset, math.radians(yaw))
    hint = int(round(s / road.DS))
    camera = road.Camera(
        pitch_deg=5.0 + rng.uniform(-1, 1) * data["camera_jitter"],
        mount_height=1.4 + 0.1 * rng.uniform(-1, 1) * data["camera_jitter"],
    )
    light = road.Lighting.random(rng)
    image = road.render(track, vehicle.camera_pose(pose), vehicle.camera_hint(hint), camera, light, rng, rows)
    return image, vehicle.expert_command(track, pose, hint)


class GeneratedFrames:
    """Frames of the procedural generator, rendered on first access and kept as network pixels.

    Frame ``i`` lies on track ``i % tracks`` with its own seeded pose, light and
    noise, so the data is the same whatever order it is read in.  The shifted
    and rotated views PilotNet synthesised from recorded frames are rendered
    here directly, from the moved camera, with the expert's recovery label.
    """

    def __init__(self, config: dict[str, Any], split: str, n: int, spec: dict[str, Any]):
        data = config["data"]
        self.data, self.spec, self.n = data, spec, int(n)
        self.tracks = max(1, int(data["tracks_" + split]))
        self.base = split_seed(config, split)
        self.pixels = np.zeros((self.n, *spec["size"], 3), np.uint8)
        self.labels = np.zeros(self.n, np.float32)
        self.done = np.zeros(self.n, bool)

    def __len__(self) -> int:
        return self.n

    def track(self, i: int) -> road.Track:
        return cached_track((*self.base, i % self.tracks), float(self.data["track_length"]), float(self.data["min_radius"]))

    def frame(self, i: int) -> tuple[np.ndarray, float]:
        """The RGB frame (only the rows the network sees are painted) and label of sample ``i``, rendered afresh."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        rng = np.random.default_rng([*self.base, i, 1])
        return random_frame(self.track(i), rng, self.data, network_rows(self.spec, road.Camera.height_px))

    def network_pixels(self, i: int) -> np.ndarray:
        """Sample ``i`` as uint8 network pixels, rendered on first use."""
        if not self.done[i]:
            image, label = self.frame(i)
            self.pixels[i] = to_network_pixels(image, self.spec)
            self.labels[i] = label
            self.done[i] = True
        return self.pixels[i]

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.float32]:
        pixels = self.network_pixels(int(i))
        return normalise(pixels, self.spec), self.labels[int(i)]


def pixel_statistics(images: list[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of network pixels: the normalisation PilotNet's first layer applied."""
    stack = np.stack(images).reshape(-1, 3).astype(np.float64)
    return stack.mean(axis=0).tolist(), np.maximum(stack.std(axis=0), 1.0).tolist()


# -- the Udacity driving_log.csv reader --------------------------------------------
@dataclass(frozen=True)
class LogRow:
    """One row of a driving log: the three camera images (left/right may be None) and the steering."""

    center: Path
    left: Path | None
    right: Path | None
    steering: float
    where: str  # "file:line" for error messages


WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:)?[\\/]")


def resolve_image(raw: str, folder: Path, root: Path, where: str) -> Path:
    """Where an image path from a log really is.

    Absolute if it exists; else relative to the csv folder; else ``IMG/<basename>``
    (logs recorded on another machine carry that machine's absolute paths).  A
    relative path that climbs out of the data folder with ``..``, or leads out of
    it through a symbolic link, is refused.
    """
    if WINDOWS_ABSOLUTE.match(raw):
        if os.path.isabs(raw) and Path(raw).is_file():
            return Path(raw)
    else:
        candidate = os.path.normpath(os.path.join(folder, raw.replace("\\", "/")))
        if os.path.commonpath([candidate, os.path.normpath(root)]) != os.path.normpath(root):
            raise DataError(f"{where}: image path {raw!r} leaves the data folder {root}")
        if Path(candidate).is_file():
            inside_data_folder(candidate, root, where)
            return Path(candidate)
    basename = re.split(r"[\\/]", raw)[-1]
    fallback = folder / "IMG" / basename
    if basename not in ("", ".", "..") and fallback.is_file():
        inside_data_folder(fallback, root, where)
        return fallback
    raise DataError(f"{where}: image {raw!r} not found (looked for it as given, relative to {folder}, and as {fallback})")


def _header_columns(fields: list[str], where: str) -> dict[str, int] | None:
    """Column positions from a header row, or None if the row is data."""
    names = [f.strip().lower() for f in fields]
    if "center" not in names and "steering" not in names:
        return None
    missing = [c for c in ("center", "steering") if c not in names]
    if missing:
        raise DataError(f"{where}: header lacks column(s) {missing}")
    return {name: names.index(name) for name in COLUMNS if name in names}


def read_driving_log(folder: Path, root: Path) -> list[LogRow]:
    """Rows of ``folder/driving_log.csv``; any malformed row is a DataError naming file and line."""
    path = Path(folder) / "driving_log.csv"
    text = read_text(
        path, "missing; a Udacity split folder holds driving_log.csv (center,left,right,steering,throttle,brake,speed)"
    )
    columns = {name: i for i, name in enumerate(COLUMNS)}
    rows: list[LogRow] = []
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True)
    try:
        for fields in reader:
            where = f"{path}:{reader.line_num}"
            fields = [f.strip() for f in fields]
            if not any(fields):
                continue
            if not rows and reader.line_num == 1 and (header := _header_columns(fields, where)) is not None:
                columns = header
                continue
            rows.append(_parse_row(fields, columns, Path(folder), root, where))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise DataError(f"{path}: no rows; expected one line per frame (center,left,right,steering,...)")
    return rows


def _parse_row(fields: list[str], columns: dict[str, int], folder: Path, root: Path, where: str) -> LogRow:
    need = max(columns["center"], columns["steering"]) + 1
    if len(fields) < need:
        raise DataError(f"{where}: expected at least {need} columns (center,left,right,steering,...), got {len(fields)}")
    raw = fields[columns["steering"]]
    try:
        steering = float(raw)
    except ValueError:
        raise DataError(f"{where}: steering {raw!r} is not a number") from None
    if not math.isfinite(steering):
        raise DataError(f"{where}: steering {raw!r} is not finite")
    if not -1.0 <= steering <= 1.0:
        raise DataError(
            f"{where}: steering {raw!r} is outside [-1, 1]; Udacity logs hold the normalised angle "
            f"(degrees / {vehicle.MAX_STEER_DEG:g}), so rescale the column"
        )

    def side(name: str) -> Path | None:
        i = columns.get(name)
        if i is None or i >= len(fields) or not fields[i]:
            return None
        return resolve_image(fields[i], folder, root, where)

    if not fields[columns["center"]]:
        raise DataError(f"{where}: empty center image path")
    return LogRow(resolve_image(fields[columns["center"]], folder, root, where), side("left"), side("right"), steering, where)


def shift_rotate(image: np.ndarray, shift_m: float, yaw_deg: float, aug: dict[str, Any]) -> np.ndarray:
    """The view from a camera ``shift_m`` to the left and turned ``yaw_deg`` to the left, assuming flat ground.

    A lateral move shifts each ground row in proportion to its distance below
    the horizon; a yaw shifts every column by f·tan(yaw).  PilotNet trained on
    such synthesised views with the recovery label of the moved camera.
    """
    h, w = image.shape[:2]
    focal = w / (2 * math.tan(math.radians(aug["hfov_deg"]) / 2))
    horizon = aug["horizon"] * h
    rows = np.arange(h, dtype=np.float32)
    ground = np.maximum(rows - horizon, 0) * (shift_m / aug["camera_height"])
    dx = ground[:, None] + focal * math.tan(math.radians(yaw_deg))
    map_x = np.arange(w, dtype=np.float32)[None, :] - dx.astype(np.float32)
    map_y = np.repeat(rows[:, None], w, axis=1)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class UdacityFrames:
    """Frames of a Udacity driving log.  For training: side cameras with a steering correction,
    random flips, and shift/rotate views with their recovery labels; for testing: centre camera only.

    Every augmentation draw comes from (seed, epoch, index), the epoch set by the
    trainer through ``set_epoch``: a run resumed at epoch k draws what an
    uninterrupted run draws there, with no generator state to save."""

    def __init__(self, rows: list[LogRow], spec: dict[str, Any], data: dict[str, Any], train: bool, seed: int = 0):
        self.spec, self.train, self.seed = spec, train, seed
        self.aug = data["augment"]
        self.samples: list[tuple[Path, float, str]] = []
        correction = float(data["side_correction"])
        for row in rows:
            self.samples.append((row.center, row.steering, row.where))
            if train and data["side_cameras"]:
                if row.left is not None:
                    self.samples.append((row.left, row.steering + correction, row.where))
                if row.right is not None:
                    self.samples.append((row.right, row.steering - correction, row.where))
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def image(self, i: int) -> tuple[np.ndarray, float]:
        path, steering, where = self.samples[i]
        try:
            return read_image(path), steering
        except Exception as exc:
            raise DataError(f"{where}: {exc}") from None

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.float32]:
        image, steering = self.image(int(i))
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, int(i)])
            image, steering = augment(image, steering, rng, self.aug)
        return preprocess(image, self.spec), np.float32(np.clip(steering, -1.0, 1.0))


def augment(image: np.ndarray, steering: float, rng: np.random.Generator, aug: dict[str, Any]) -> tuple[np.ndarray, float]:
    """A random flip and a random shifted/rotated view, with the label that recovers from it."""
    if aug["flip"] and rng.random() < 0.5:
        image, steering = image[:, ::-1], -steering
    shift = rng.uniform(-1, 1) * aug["shift_m"]
    yaw = rng.uniform(-1, 1) * aug["yaw_deg"]
    if shift or yaw:
        image = shift_rotate(np.ascontiguousarray(image), shift, yaw, aug)
        steering = vehicle.recovery_command(steering, shift, math.radians(yaw))
    return image, steering

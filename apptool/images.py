"""Reading user images and video safely: numpy and OpenCV only (the deployment path has no torch).

Every failure is an InputError naming the file and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from apptool.errors import InputError
from apptool.image_headers import image_size

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
#: Largest image accepted, in pixels: a guard against decompression bombs.
MAX_PIXELS = int(os.environ.get("APPTOOL_MAX_PIXELS", 40_000_000))
#: Largest file accepted, in bytes.
MAX_FILE_BYTES = int(os.environ.get("APPTOOL_MAX_FILE_BYTES", 200 * 1024 * 1024))


def _check_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_PIXELS:
        raise InputError(f"{name}: image is {width}x{height} = {width * height:,} pixels, more than the limit of {MAX_PIXELS:,}")


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes to an HxWx3 uint8 RGB array."""
    if not data:
        raise InputError(f"{name}: file is empty, expected an image (PNG, JPEG, ...)")
    try:
        width, height = image_size(data)
    except ValueError as exc:  # refused, not decoded: a header this module cannot read could declare any size
        raise InputError(f"{name}: not a readable image ({exc})") from None
    _check_size(width, height, name)
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise InputError(f"{name}: not a readable image (corrupt or unsupported format); expected PNG, JPEG, BMP, TIFF or WebP")
    return to_rgb(array, name, bgr=True)


def to_rgb(array: np.ndarray, name: str = "image", bgr: bool = False) -> np.ndarray:
    """Any grayscale, RGB, RGBA, 16-bit or float image array as HxWx3 uint8 RGB."""
    array = np.asarray(array)
    if array.ndim not in (2, 3) or array.size == 0 or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InputError(f"{name}: expected an HxW or HxWxC (C=1,3,4) image, got shape {array.shape}")
    if array.dtype.kind not in "buif":
        raise InputError(f"{name}: expected a numeric image array, got dtype {array.dtype}")
    _check_size(array.shape[1], array.shape[0], name)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise InputError(f"{name}: image contains NaN or infinite values")
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 2 or array.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(array.reshape(array.shape[0], array.shape[1], 1), 3, axis=2))
    if array.shape[2] == 4:  # composite on white, as a viewer shows it
        alpha = array[:, :, 3:4].astype(np.float32) / 255.0
        array = (array[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if bgr:
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"{path}: file is {path.stat().st_size:,} bytes, more than the limit of {MAX_FILE_BYTES:,}")
    return decode_image(path.read_bytes(), str(path))


def iter_video_frames(path: str | Path, every: int = 1, limit: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(index, RGB frame) pairs of a video file, every ``every``-th frame."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"{path}: not a readable video")
    try:
        _check_size(int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), str(path))
        index = count = 0
        while limit is None or count < limit:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                yield index, to_rgb(frame, f"{path} frame {index}", bgr=True)
                count += 1
            index += 1
        if index == 0:
            raise InputError(f"{path}: video has no frames that can be decoded")
    finally:
        capture.release()


def video_fps(path: str | Path) -> float:
    """The frame rate a video declares (25 when it declares none)."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0
    capture.release()
    return fps if fps and fps > 0 else 25.0


def write_video(path: str | Path, frames: list[np.ndarray], fps: float = 15.0) -> Path:
    """Write RGB frames as an MP4 (mp4v) file that browsers and players open."""
    path = Path(path)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return path


def list_inputs(paths: list[str | Path], suffixes: set[str]) -> list[Path]:
    """Expand folders into the files they hold with the given suffixes (sorted); files pass through."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return found


def read_image_or_video(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Items of an image file (one) or a video file (one per frame)."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        for index, frame in iter_video_frames(path):
            yield f"{path.name}#{index}", frame
    else:
        yield path.name, read_image(path)

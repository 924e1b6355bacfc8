"""VisualSFM's NVM_V3 reconstruction (``reconstruction.nvm`` in a Cambridge Landmarks folder), read and written.

The geometric loss of Kendall & Cipolla (CVPR 2017) needs the scene's 3D points and which
image sees which; a Cambridge folder ships them as the structure-from-motion model its poses
came from.  The file is ::

    NVM_V3 [FixedK fx cx fy cy]
    <cameras>   then that many lines   name f qw qx qy qz cx cy cz radial 0
    <points>    then that many lines   x y z r g b n (image feature u v) * n

in the frame of ``dataset_*.txt`` (u, v are pixels from the image centre).  Only the first
model is read: the rest of the file (further models, the PLY list) holds nothing the loss uses.
Cameras are matched to pose-list images by path without extension, since the real files name
the JPEG frames the reconstruction ran on and the data set ships them as PNG.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from apptool.errors import DataError
from apptool_posenet.geometry import quat_to_rot

FILE = "reconstruction.nvm"
CAMERA_FIELDS = 11  # name f qw qx qy qz cx cy cz radial 0
POINT_FIELDS = 7  # x y z r g b n, then 4 per measurement


@dataclass
class Reconstruction:
    """Points (P, 3), camera centres (M, 3), and per camera its image key and the indices of the points it sees."""

    points: np.ndarray
    centres: np.ndarray
    keys: list[str]
    seen: list[np.ndarray]


def image_key(name: str) -> str:
    """A path compared without extension, leading ``./`` or Windows separators."""
    return str(PurePosixPath(name.replace("\\", "/").removeprefix("./")).with_suffix(""))


def _lines(path: Path):
    """(line number, fields) of the non-blank lines."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if fields:
                yield number, fields


def _count(lines, path: Path, what: str) -> int:
    number, fields = next(lines, (None, None))
    if fields is None:
        raise DataError(f"{path}: ends before the number of {what}")
    if len(fields) != 1 or not fields[0].isdigit():
        raise DataError(f"{path}, line {number}: expected the number of {what}, found {' '.join(fields)[:60]!r}")
    return int(fields[0])


def _floats(fields: list[str], path: Path, number: int, what: str) -> np.ndarray:
    try:
        values = np.array(fields, dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}, line {number}: {what} must be numbers, found {' '.join(fields)[:60]!r}") from None
    if not np.isfinite(values).all():
        raise DataError(f"{path}, line {number}: {what} must be finite numbers")
    return values


def read_nvm(path: Path) -> Reconstruction:
    """The first model of an NVM_V3 file; a DataError naming the file and line for anything else."""
    path = Path(path)
    lines = _lines(path)
    number, header = next(lines, (1, [""]))
    if header[0] != "NVM_V3":
        raise DataError(f"{path}, line {number}: expected an NVM_V3 header, found {header[0][:40]!r}")
    keys, centres = [], []
    for _ in range(_count(lines, path, "cameras")):
        number, fields = next(lines, (None, None))
        if fields is None or len(fields) < CAMERA_FIELDS - 1:
            raise DataError(f"{path}, line {number or 'end'}: expected a camera: name f qw qx qy qz cx cy cz radial 0")
        keys.append(image_key(fields[0]))
        centres.append(_floats(fields[6:9], path, number, "the camera centre"))
    seen: list[list[int]] = [[] for _ in keys]
    points = []
    for index in range(_count(lines, path, "points")):
        number, fields = next(lines, (None, None))
        if fields is None or len(fields) < POINT_FIELDS:
            raise DataError(f"{path}, line {number or 'end'}: expected a point: x y z r g b n (image feature u v)*n")
        points.append(_floats(fields[:3], path, number, "the point's x y z"))
        measured = fields[POINT_FIELDS:]
        if not fields[6].isdigit() or len(measured) != 4 * int(fields[6]):
            raise DataError(f"{path}, line {number}: {fields[6]!r} measurements announced, {len(measured) / 4:g} given")
        for camera in measured[::4]:
            if not camera.isdigit() or int(camera) >= len(keys):
                raise DataError(f"{path}, line {number}: image index {camera!r} is not one of the {len(keys)} cameras")
            seen[int(camera)].append(index)
    return Reconstruction(
        np.array(points, np.float64).reshape(-1, 3),
        np.array(centres, np.float64).reshape(-1, 3),
        keys,
        [np.array(ids, np.int64) for ids in seen],
    )


def write_nvm(path: Path, names: list[str], poses: np.ndarray, focal: float, points: np.ndarray, seen: list[np.ndarray]) -> Path:
    """Write cameras (pose rows x y z qw qx qy qz, one focal length in pixels) and the points each sees, as NVM_V3."""
    measurements: list[list[str]] = [[] for _ in range(len(points))]
    for camera, (pose, ids) in enumerate(zip(poses, seen)):
        in_camera = (points[ids] - pose[:3]) @ quat_to_rot(pose[3:]).T
        uv = focal * in_camera[:, :2] / in_camera[:, 2:]
        for k, (i, (u, v)) in enumerate(zip(ids, uv)):
            measurements[int(i)].append(f"{camera} {k} {u:.2f} {v:.2f}")
    rows = ["NVM_V3", "", str(len(names))]
    rows += [
        f"{name} {focal:.6f} {q[0]:.9f} {q[1]:.9f} {q[2]:.9f} {q[3]:.9f} {c[0]:.6f} {c[1]:.6f} {c[2]:.6f} 0 0"
        for name, c, q in zip(names, poses[:, :3], poses[:, 3:])
    ]
    rows += ["", str(len(points))]
    rows += [f"{x:.4f} {y:.4f} {z:.4f} 128 128 128 {len(m)} {' '.join(m)}".rstrip() for (x, y, z), m in zip(points, measurements)]
    rows += ["", "0", ""]
    Path(path).write_text("\n".join(rows), encoding="utf-8")
    return Path(path)

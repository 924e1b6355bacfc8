"""Reader for the Cambridge Landmarks layout (``dataset_train.txt`` / ``dataset_test.txt``).

Each file starts with 3 header lines, then one line per image::

    seq1/frame00001.png X Y Z W P Q R

position in metres, orientation quaternion with W first; image paths are
relative to the data folder.  The real files end lines with CR LF, carry
trailing spaces and blank trailing lines; all of that is accepted.  A file
without the header is accepted too (a leading line counts as header only if
it is not a pose row).  Anything else that does not parse is a DataError
naming the file and the line: non-finite numbers, positions beyond 1e6 m, and
quaternions that are zero or whose norm is far from 1; image paths that leave
the data folder are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import cv2
import numpy as np

from apptool.errors import DataError
from apptool.paths import inside_data_folder

HEADER_LINES = 3
FIELDS = ("path", "X", "Y", "Z", "W", "P", "Q", "R")
SPLIT_FILES = {"train": "dataset_train.txt", "test": "dataset_test.txt"}
#: Positions are metres in a scene's local frame: beyond 1,000 km a value is a unit or export mistake.
MAX_POSITION_M = 1e6
#: A quaternion written by a pose tool has norm 1 up to rounding; far from it the row is corrupt.
QUATERNION_NORM_RANGE = (1e-3, 1e3)


@dataclass
class PoseList:
    """Image files and their poses (rows x, y, z, qw, qx, qy, qz with qw >= 0), with where each came from."""

    paths: list[Path]
    poses: np.ndarray
    sources: list[str]


def _parse_row(line: str) -> tuple[str, list[float]] | None:
    """(path, 7 numbers) if ``line`` is a well-formed pose row, else None."""
    tokens = line.split()
    if len(tokens) != len(FIELDS):
        return None
    try:
        values = [float(t) for t in tokens[1:]]
    except ValueError:
        return None
    return tokens[0], values


def _explain(line: str, where: str) -> DataError:
    tokens = line.split()
    if len(tokens) != len(FIELDS):
        return DataError(f"{where}: expected {len(FIELDS)} fields 'path X Y Z W P Q R', got {len(tokens)}: {line.strip()!r}")
    for name, token in zip(FIELDS[1:], tokens[1:]):
        try:
            float(token)
        except ValueError:
            return DataError(f"{where}: field {name} is not a number: {token!r}")
    return DataError(f"{where}: cannot parse {line.strip()!r}")


def _safe_path(root: Path, raw: str, where: str) -> Path:
    text = raw.replace("\\", "/")
    if text.startswith("/") or PureWindowsPath(raw).drive:
        raise DataError(f"{where}: image path {raw!r} is absolute; paths must be relative to {root}")
    path = inside_data_folder(root / text, root, where)
    if not path.is_file():
        raise DataError(f"{where}: image {raw!r} not found under {root}")
    return path


def _position(xyz: list[float], where: str) -> list[float]:
    """X Y Z if finite and within MAX_POSITION_M of the origin (a larger value is a unit or parsing mistake)."""
    for name, value in zip(FIELDS[1:4], xyz):
        if not math.isfinite(value):
            raise DataError(f"{where}: position {name} = {value} is not a finite number")
        if abs(value) > MAX_POSITION_M:
            raise DataError(
                f"{where}: position {name} = {value:g} m is beyond {MAX_POSITION_M:g} m; positions are metres in a local frame"
            )
    return xyz


def _unit_quaternion(wpqr: list[float], where: str) -> np.ndarray:
    """W P Q R normalised onto the hemisphere W >= 0; zero, non-finite or absurdly scaled ones are refused.

    The norm is taken in float64 of the values as written, so ``1e200 1e200 0 0``
    cannot overflow into a zero quaternion that then passes as a rotation.
    """
    quat = np.array(wpqr, np.float64)
    for name, value in zip(FIELDS[4:], quat):
        if not math.isfinite(value):
            raise DataError(f"{where}: quaternion {name} = {value} is not a finite number")
    if not quat.any():
        raise DataError(f"{where}: quaternion W P Q R is zero")
    norm = math.hypot(*quat)  # no overflow: hypot scales before squaring
    if not QUATERNION_NORM_RANGE[0] <= norm <= QUATERNION_NORM_RANGE[1]:
        low, high = QUATERNION_NORM_RANGE
        raise DataError(f"{where}: quaternion W P Q R has norm {norm:g}; a rotation's is 1 (accepted {low:g} to {high:g})")
    quat = quat / norm
    return -quat if quat[0] < 0 else quat


def read_pose_file(root: Path, name: str) -> PoseList:
    """Parse ``root/name``; every problem is a DataError with the file and line number."""
    root = Path(root)
    file = root / name
    if not file.is_file():
        raise DataError(f"{file}: missing; the Cambridge Landmarks layout needs {' and '.join(SPLIT_FILES.values())} in {root}")
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{file}: not a UTF-8 text file ({exc})") from None
    paths, poses, sources = [], [], []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{file}:{number}"
        if not line.strip():
            continue
        row = _parse_row(line)
        if row is None:
            if number <= HEADER_LINES and not paths:
                continue  # header line
            raise _explain(line, where)
        raw, values = row
        pose = [*_position(values[:3], where), *_unit_quaternion(values[3:], where)]
        paths.append(_safe_path(root, raw, where))
        poses.append(pose)
        sources.append(where)
    if not paths:
        raise DataError(f"{file}: no pose rows after the {HEADER_LINES} header lines")
    return PoseList(paths, np.array(poses, np.float64), sources)


def write_pose_file(path: Path, names: list[str], poses: np.ndarray, scene: str = "apptool posenet") -> Path:
    """Write a pose list in the Cambridge layout (header, CR LF line ends, as the published files have)."""
    lines = [f"Visual Landmark Dataset V1 ({scene})", "ImageFile, Camera Position [X Y Z W P Q R]", ""]
    lines += [f"{n} " + " ".join(f"{v:.6f}" for v in pose) for n, pose in zip(names, poses)]
    Path(path).write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return Path(path)


def write_split(
    folder: Path, split: str, names: list[str], images: list[np.ndarray], poses: np.ndarray, scene: str = "apptool posenet"
) -> Path:
    """Write one split's RGB frames as PNG files under ``folder`` and its pose list (``dataset_<split>.txt``)."""
    folder = Path(folder)
    for name, image in zip(names, images):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / name), image[:, :, ::-1])
    return write_pose_file(folder / SPLIT_FILES[split], names, poses, scene)

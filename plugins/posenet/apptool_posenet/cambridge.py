"""Reader for the Cambridge Landmarks layout (``dataset_train.txt`` / ``dataset_test.txt``).

Each file starts with 3 header lines, then one line per image::

    seq1/frame00001.png X Y Z W P Q R

position in metres, orientation quaternion with W first; image paths are
relative to the data folder.  The real files end lines with CR LF, carry
trailing spaces and blank trailing lines; all of that is accepted.  A file
without the header is accepted too (a leading line counts as header only if
it is not a pose row).  Anything else that does not parse is a DataError
naming the file and the line; image paths that leave the data folder are refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath

import numpy as np

from apptool.errors import DataError

HEADER_LINES = 3
FIELDS = ("path", "X", "Y", "Z", "W", "P", "Q", "R")
SPLIT_FILES = {"train": "dataset_train.txt", "test": "dataset_test.txt"}


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
    try:
        path = (root / text).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a symlink loop
        raise DataError(f"{where}: image path {raw!r} cannot be resolved ({exc})") from None
    if not path.is_relative_to(root.resolve()):
        raise DataError(f"{where}: image path {raw!r} escapes the data folder {root}")
    if not path.is_file():
        raise DataError(f"{where}: image {raw!r} not found under {root}")
    return path


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
        if not all(math.isfinite(v) for v in values):
            raise DataError(f"{where}: pose has a non-finite value: {line.strip()!r}")
        quat = np.array(values[3:])
        norm = float(np.linalg.norm(quat))
        if norm < 1e-6:
            raise DataError(f"{where}: quaternion W P Q R is zero")
        quat = quat / norm
        if quat[0] < 0:
            quat = -quat
        paths.append(_safe_path(root, raw, where))
        poses.append([*values[:3], *quat])
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

"""CSV sequences: one file per sequence, one row per frame, one column per channel.

Layout of a data set (``--data DIR`` without ``.ts`` files)::

    DIR/train/<class name>/<any name>.csv
    DIR/test/<class name>/<any name>.csv

A file may start with a header row (any row with a non-numeric field is
taken as the header); a column headed ``t``, ``time``, ``timestamp`` or
``frame`` is dropped (frames are taken as evenly spaced).  Separators are
commas; spaces around values are ignored; empty lines are skipped; ``?``,
``NaN`` or an empty field is a missing value, interpolated as in ``.ts``
files.  Errors are DataErrors naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from apptool.datasets import read_text
from apptool.errors import DataError
from apptool.paths import inside_data_folder
from apptool_gesture.tsformat import FLOAT32_MAX, MISSING, fill_missing

TIME_COLUMNS = {"t", "time", "timestamp", "timestamps", "frame"}


def _number(token: str) -> float | None:
    token = token.strip()
    if token.lower() in MISSING or not token:
        return np.nan
    try:
        return float(token)
    except ValueError:
        return None


def read_csv_sequence(path: str | Path) -> np.ndarray:
    """The (T, D) float32 sequence stored in one CSV file."""
    path = Path(path)
    text = read_text(path, "no such file")
    keep: list[int] | None = None
    rows: list[list[float]] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        fields = raw.split(",")
        values = [_number(f) for f in fields]
        if keep is None:  # the first non-empty line is a header or already data
            width = len(fields)
            if any(v is None for v in values):
                keep = [i for i, f in enumerate(fields) if f.strip().lower() not in TIME_COLUMNS]
                if not keep:
                    raise DataError(f"{path}:{lineno}: the header has only a time column; expected channel columns")
                continue
            keep = list(range(width))
        if len(fields) != width:
            raise DataError(f"{path}:{lineno}: {len(fields)} fields, expected {width} like the first line")
        bad = [i for i in keep if values[i] is None]
        if bad:
            raise DataError(f"{path}:{lineno}, column {bad[0] + 1}: {fields[bad[0]].strip()!r} is not a number")
        huge = [i for i in keep if abs(values[i]) > FLOAT32_MAX]  # sequences are float32; NaN (missing) passes
        if huge:
            raise DataError(
                f"{path}:{lineno}, column {huge[0] + 1}: {fields[huge[0]].strip()!r} is infinite or too large for float32"
            )
        rows.append([values[i] for i in keep])
    if not rows:
        raise DataError(f"{path}: no data rows")
    array = np.asarray(rows, np.float64)
    for d in range(array.shape[1]):
        if np.isnan(array[:, d]).all():
            raise DataError(f"{path}: column {keep[d] + 1} has no values")
        array[:, d] = fill_missing(array[:, d])
    return array.astype(np.float32)


def read_csv_split(folder: Path) -> tuple[list[np.ndarray], list[str]]:
    """Sequences and class names of ``folder/<class>/*.csv``."""
    if not folder.is_dir():
        raise DataError(f"{folder}: missing; expected {folder.name}/<class>/*.csv")
    series, labels = [], []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for file in sorted(class_dir.glob("*.csv")):
            inside_data_folder(file, folder.parent)
            series.append(read_csv_sequence(file))
            labels.append(class_dir.name)
    if not series:
        raise DataError(f"{folder}: no <class>/*.csv files")
    widths = {s.shape[1] for s in series}
    if len(widths) > 1:
        raise DataError(f"{folder}: sequences have different numbers of channels {sorted(widths)}")
    return series, labels

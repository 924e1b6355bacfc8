"""Reader for the UCR/UEA time-series classification format (``.ts``), after sktime's specification.

A file is header lines (``@tag value``), then ``@data``, then one case per
line: dimensions separated by ``:``, values by ``,``, the class label last
when ``@classLabel true``.  What this reader does with the quirks found in
real files:

* tags and ``true``/``false`` are case-insensitive; ``#`` comment lines,
  blank lines, stray spaces and Windows line ends are ignored; tags it does
  not know (``@targetLabel false``, vendor extras) are skipped;
* ``?`` (or ``NaN``) is a missing value.  A run of missing values at the end
  of a dimension is padding (some releases pad unequal-length series that
  way) and is cut off; any other missing value is filled by linear
  interpolation between its observed neighbours (the nearest observed value
  at the start).  A dimension with no observed value is an error;
* all dimensions of one case must have the same length (after cutting
  padding); cases may differ in length unless ``@equalLength true``, and
  then ``@seriesLength`` is checked;
* ``@timeStamps true`` (``(t,v)`` pairs) is rejected with a DataError: the
  values would need resampling onto a grid this reader does not guess.

Every error is an :class:`~apptool.errors.DataError` naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from apptool.datasets import read_text
from apptool.errors import DataError

MISSING = {"?", "nan"}
FLOAT32_MAX = float(np.finfo(np.float32).max)
BOOL_TAGS = {"timestamps", "missing", "univariate", "equallength"}
INT_TAGS = {"dimensions", "serieslength"}


@dataclass
class TsFile:
    """The cases of one ``.ts`` file: (T, D) float32 arrays and, when labelled, their class names."""

    path: Path
    series: list[np.ndarray] = field(default_factory=list)
    labels: list[str] | None = None
    class_names: list[str] | None = None
    problem_name: str = ""
    header: dict[str, object] = field(default_factory=dict)

    @property
    def dims(self) -> int:
        return self.series[0].shape[1]


def _bool(value: str, where: str) -> bool:
    word = value.split()[0].lower() if value.split() else ""
    if word not in ("true", "false"):
        raise DataError(f"{where}: expected true or false, got {value!r}")
    return word == "true"


def _int(value: str, where: str) -> int:
    try:
        number = int(value.split()[0])
    except (ValueError, IndexError):
        raise DataError(f"{where}: expected a whole number, got {value!r}") from None
    if number < 1:
        raise DataError(f"{where}: expected a positive number, got {number}")
    return number


def fill_missing(values: np.ndarray) -> np.ndarray:
    """Interpolate NaNs of a 1-D array linearly (edges take the nearest observed value)."""
    missing = np.isnan(values)
    if missing.any():
        index = np.arange(len(values))
        values = values.copy()
        values[missing] = np.interp(index[missing], index[~missing], values[~missing])
    return values


def _parse_dimension(text: str, where: str) -> np.ndarray:
    values = []
    for j, token in enumerate(text.split(",")):
        token = token.strip()
        if token.lower() in MISSING:
            values.append(np.nan)
            continue
        try:
            values.append(float(token))
        except ValueError:
            what = "an empty value" if not token else repr(token)
            raise DataError(f"{where}, value {j + 1}: {what} is not a number (missing values are written '?')") from None
    array = np.asarray(values, np.float64)
    if not (np.abs(array[~np.isnan(array)]) <= FLOAT32_MAX).all():  # cases are stored as float32
        raise DataError(f"{where}: infinite value, or one too large for float32")
    observed = np.flatnonzero(~np.isnan(array))
    if observed.size == 0:
        raise DataError(f"{where}: every value is missing")
    return array[: observed[-1] + 1]  # trailing '?' are padding


def _parse_case(line: str, header: dict, where: str) -> tuple[np.ndarray, str | None]:
    if "(" in line:
        raise DataError(f"{where}: timestamped values '(t,v)' are not supported; write plain values separated by ','")
    parts = line.split(":")
    labelled = bool(header.get("classlabel"))
    label = parts.pop().strip() if labelled else None
    if labelled and not parts:
        raise DataError(f"{where}: expected dimensions followed by ':' and the class label")
    if labelled and label not in header["class_names"]:
        raise DataError(f"{where}: class label {label!r} is not declared in @classLabel ({' '.join(header['class_names'])})")
    expected = header.get("dimensions") or (1 if header.get("univariate") is True else None)
    if expected and len(parts) != expected:
        raise DataError(f"{where}: {len(parts)} dimensions, but the header declares {expected}")
    dims = [_parse_dimension(text, f"{where}: dimension {d + 1}") for d, text in enumerate(parts)]
    lengths = {len(d) for d in dims}
    if len(lengths) > 1:
        raise DataError(f"{where}: dimensions have different lengths {[len(d) for d in dims]}")
    series = np.stack([fill_missing(d) for d in dims], 1).astype(np.float32)
    if header.get("equallength") and header.get("serieslength") and len(series) != header["serieslength"]:
        raise DataError(f"{where}: series length {len(series)}, but @seriesLength is {header['serieslength']}")
    return series, label


def _parse_header(tag: str, value: str, header: dict, where: str) -> None:
    if tag in BOOL_TAGS:
        header[tag] = _bool(value, where)
    elif tag in INT_TAGS:
        header[tag] = _int(value, where)
    elif tag == "problemname":
        header[tag] = value.strip()
    elif tag == "classlabel":
        words = value.split()
        header[tag] = _bool(value, where)
        header["class_names"] = words[1:]
        if header[tag] and not header["class_names"]:
            raise DataError(f"{where}: @classLabel true must list the class names")
    elif tag == "targetlabel" and value.split() and _bool(value, where):
        raise DataError(f"{where}: @targetLabel true is a regression file; this task classifies (@classLabel)")
    if header.get("timestamps"):
        raise DataError(f"{where}: @timeStamps true is not supported; write the values without timestamps")


def read_ts(path: str | Path) -> TsFile:
    """Parse a ``.ts`` file; raises DataError with the file and line on anything malformed."""
    path = Path(path)
    text = read_text(path, "no such file")
    result = TsFile(path)
    header: dict = {}
    in_data = False
    labels: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        where = f"{path}:{lineno}"
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{where}: expected a header line '@tag value' or '@data' before the cases")
            tag, _, value = line[1:].partition(" ")
            tag = tag.strip().lower()
            if tag == "data":
                in_data = True
            else:
                _parse_header(tag, value, header, where)
            continue
        if line.startswith("@"):
            raise DataError(f"{where}: header line after @data")
        series, label = _parse_case(line, header, where)
        if result.series and series.shape[1] != result.series[0].shape[1]:
            raise DataError(f"{where}: {series.shape[1]} dimensions, earlier cases have {result.series[0].shape[1]}")
        if header.get("equallength") and result.series and len(series) != len(result.series[0]):
            raise DataError(
                f"{where}: series length {len(series)} differs from {len(result.series[0])}, but @equalLength is true"
            )
        result.series.append(series)
        if label is not None:
            labels.append(label)
    if not in_data:
        raise DataError(f"{path}: no @data line; not a .ts file")
    if not result.series:
        raise DataError(f"{path}: no cases after @data")
    if header.get("univariate") and result.dims != 1:
        raise DataError(f"{path}: @univariate true but the cases have {result.dims} dimensions")
    result.header = {k: v for k, v in header.items() if k != "class_names"}
    result.problem_name = str(header.get("problemname", path.stem))
    if header.get("classlabel"):
        result.labels, result.class_names = labels, list(header["class_names"])
    return result

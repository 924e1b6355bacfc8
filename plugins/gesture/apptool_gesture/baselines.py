"""Classical baselines measured beside the network on the same split and the same model inputs.

* 1-NN with Euclidean distance (numpy, always): sequences are linearly
  resampled to the longest training length first, so unequal lengths compare
  frame for frame over the whole gesture;
* 1-NN with dynamic time warping, full window (aeon, the ``benchmark`` extra):
  the UCR archive's reference classifier; it aligns unequal lengths itself.

Both run on the sequences exactly as the model sees them (``prepare``), so a
gap between model and baseline is the model's, not the preprocessing's.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Above this many DTW cell updates (test x train x length^2) the DTW baseline is skipped: minutes of CPU.
DTW_MAX_CELLS = 3e9  # about half a minute of aeon DTW on one core; the Euclidean 1-NN always runs
DTW_EXTRA = "pip install 'apptool-gesture[benchmark]' (aeon)"


def resample(seq: np.ndarray, length: int) -> np.ndarray:
    """A (T, F) sequence linearly interpolated to (length, F), end points kept."""
    if len(seq) == length:
        return seq
    source = np.linspace(0.0, 1.0, len(seq))
    target = np.linspace(0.0, 1.0, length)
    return np.stack([np.interp(target, source, seq[:, f]) for f in range(seq.shape[1])], 1)


def nearest_euclidean(train: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> np.ndarray:
    """Index of each test sequence's nearest training sequence by Euclidean distance after resampling."""
    length = max(len(s) for s in train)
    a = np.stack([resample(s, length).ravel() for s in train]).astype(np.float64)
    b = np.stack([resample(s, length).ravel() for s in test]).astype(np.float64)
    nearest = []
    for start in range(0, len(b), 256):
        chunk = b[start : start + 256]
        squared = (chunk**2).sum(1)[:, None] + (a**2).sum(1)[None, :] - 2 * chunk @ a.T
        nearest.append(squared.argmin(1))
    return np.concatenate(nearest)


def nearest_dtw(train: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> np.ndarray:
    """Index of each test sequence's nearest training sequence by full-window DTW (aeon)."""
    from aeon.distances import dtw_pairwise_distance

    as_channels_first = (
        [np.ascontiguousarray(s.T, np.float64) for s in train],
        [np.ascontiguousarray(s.T, np.float64) for s in test],
    )
    return dtw_pairwise_distance(as_channels_first[1], as_channels_first[0]).argmin(1)


def dtw_unavailable(train: Sequence[np.ndarray], test: Sequence[np.ndarray]) -> str | None:
    """Why the DTW baseline cannot run here, or None when it can."""
    if importlib.util.find_spec("aeon.distances") is None:
        return f"DTW-1NN needs aeon: {DTW_EXTRA}"
    cells = len(train) * len(test) * max(len(s) for s in train) * max(len(s) for s in test)
    if cells > DTW_MAX_CELLS:
        return f"DTW-1NN skipped: {cells:.1e} cell updates is more than {DTW_MAX_CELLS:.0e}"
    return None


def baseline_accuracies(
    train: Sequence[np.ndarray], train_y: np.ndarray, test: Sequence[np.ndarray], test_y: np.ndarray
) -> dict[str, Any]:
    """``baseline_1nn_euclidean`` and ``baseline_1nn_dtw`` accuracies (the latter None, with the reason, when unavailable)."""
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    result: dict[str, Any] = {
        "baseline_1nn_euclidean": float(np.mean(train_y[nearest_euclidean(train, test)] == test_y)),
        "baseline_1nn_dtw": None,
    }
    reason = dtw_unavailable(train, test)
    if reason:
        result["baseline_1nn_dtw_unavailable"] = reason
    else:
        result["baseline_1nn_dtw"] = float(np.mean(train_y[nearest_dtw(train, test)] == test_y))
    return result

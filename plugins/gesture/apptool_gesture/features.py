"""Numpy preprocessing shared by training, the torch/ONNX predict path, evaluation and the demo.

A raw sequence is a (T, D) float array.  ``features`` names how it becomes
model input, frame by frame and causally (a frame's features never depend
on later frames, so the streaming path sees what the offline path sees):

* ``pen`` — 2-D positions (x, y) → (x - x0, y - y0, dx, dy): where the pen
  is relative to where the stroke began, and how it moves;
* ``accel`` — accelerations a → (a - a0, a): the change since the start, which
  cancels the gravity a tilted sensor sees at rest, next to the raw reading;
* ``raw`` — the channels as they are (user ``.ts`` and CSV data).

Before that, with ``series_norm`` (the UCR archive's convention), each
sequence's channels are z-normalised over the sequence itself, so offset and
scale of one recording do not matter; this needs the whole sequence, which
the offline path, evaluation and the demo's finished drawings have.  With
``data.target_frames``, long recordings are then averaged over blocks of
``pool`` frames, a factor derived from the training split's median length
(``pool_factor``), which bounds the cost of very long recordings; a live
stream steps once per block.  It is off by default: averaging keeps smooth
shapes (OSULeaf's outlines gained) but loses sharp events (ACSF1's power
spikes).  Then every
channel is standardised with the mean and standard deviation fitted on the
training split, stored in the bundle config as ``input``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from apptool.errors import InputError
from apptool_gesture.generator import KINDS, generator_kind

FEATURE_WIDTH = {"pen": lambda d: 2 * d, "accel": lambda d: 2 * d, "raw": lambda d: d}
#: Longest sequence predict accepts: about 5.5 hours at 50 fps, and a few seconds of LSTM on a CPU.
MAX_FRAMES = 1_000_000


def features(seq: np.ndarray, kind: str) -> np.ndarray:
    """Model features of one raw (T, D) sequence, before standardisation."""
    seq = np.asarray(seq, np.float32)
    if kind == "pen":
        delta = np.diff(seq, axis=0, prepend=seq[:1])
        return np.concatenate([seq - seq[:1], delta], 1)
    if kind == "accel":
        return np.concatenate([seq - seq[:1], seq], 1)
    return seq


def znormalise(seq: np.ndarray) -> np.ndarray:
    """Each channel of one (T, D) sequence shifted to mean 0 and scaled to standard deviation 1 (a flat one only shifted)."""
    seq = np.asarray(seq, np.float32)
    std = seq.std(0)
    return (seq - seq.mean(0)) / np.where(std > 1e-6, std, 1.0).astype(np.float32)


def pool_frames(seq: np.ndarray, pool: int) -> np.ndarray:
    """Means of consecutive blocks of ``pool`` frames of a (T, D) sequence (the last block may be shorter)."""
    if pool <= 1:
        return seq
    starts = np.arange(0, len(seq), pool)
    sizes = np.diff(np.append(starts, len(seq)))
    return (np.add.reduceat(np.asarray(seq, np.float64), starts, axis=0) / sizes[:, None]).astype(np.float32)


def pool_factor(train: Sequence[np.ndarray], target_frames: int) -> int:
    """Frames averaged into one so that the median training sequence is at most ``target_frames`` long (0: none)."""
    if target_frames <= 0:
        return 1
    return max(1, -(-int(np.median([len(s) for s in train])) // int(target_frames)))


def fit_input_spec(
    train: Sequence[np.ndarray], kind: str, fps: float, series_norm: bool = False, target_frames: int = 0
) -> dict[str, Any]:
    """The ``input`` section of a bundle config: feature kind, widths, pooling and training-split statistics."""
    pool = pool_factor(train, target_frames)
    raw = [pool_frames(znormalise(s) if series_norm else s, pool) for s in train]
    frames = np.concatenate([features(s, kind) for s in raw], 0).astype(np.float64)
    std = frames.std(0)
    return {
        "features": kind,
        "series_norm": bool(series_norm),
        "pool": pool,
        "raw_dims": int(train[0].shape[1]),
        "n_features": int(frames.shape[1]),
        "median_frames": int(np.median([len(s) for s in raw])),
        "mean": [float(v) for v in frames.mean(0)],
        "std": [float(v) if v > 1e-6 else 1.0 for v in std],
        "fps": float(fps),
    }


def input_spec(config: dict[str, Any]) -> dict[str, Any]:
    """The config's ``input`` section; before data is loaded, the built-in generator's, unstandardised."""
    if "input" in config:
        return config["input"]
    kind = generator_kind(config["data"])
    raw_dims = KINDS[kind]
    width = FEATURE_WIDTH[kind](raw_dims)
    return {
        "features": kind,
        "raw_dims": raw_dims,
        "n_features": width,
        "mean": [0.0] * width,
        "std": [1.0] * width,
        "fps": float(config["data"].get("fps", 50)),
    }


def check_sequence(seq: Any, spec: dict[str, Any], name: str = "sequence") -> np.ndarray:
    """A raw input as a finite (T, D) float32 array with the channels the model was trained on."""
    try:
        array = np.asarray(seq, np.float32)
    except (TypeError, ValueError):
        raise InputError(
            f"{name}: expected a sequence of numbers (frames x channels), got {type(seq).__name__} {seq!r:.60}"
        ) from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] < 1:
        raise InputError(f"{name}: expected a sequence of shape (frames, channels), got {array.shape}")
    if array.shape[0] > MAX_FRAMES:
        raise InputError(f"{name}: {array.shape[0]:,} frames, more than the limit of {MAX_FRAMES:,}")
    if array.shape[1] != spec["raw_dims"]:
        raise InputError(f"{name}: {array.shape[1]} channels, but this model reads {spec['raw_dims']}")
    if not np.isfinite(array).all():
        raise InputError(f"{name}: contains NaN or infinite values")
    return array


def prepare(seq: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Standardised (T, F) float32 model input of a raw sequence."""
    mean, std = np.asarray(spec["mean"], np.float32), np.asarray(spec["std"], np.float32)
    seq = znormalise(seq) if spec.get("series_norm") else seq
    seq = pool_frames(seq, int(spec.get("pool", 1)))  # bundles from before pooling have no "pool"
    return ((features(seq, spec["features"]) - mean) / std).astype(np.float32)


def model_input(seq: Any, spec: dict[str, Any], name: str = "sequence") -> np.ndarray:
    """A raw input checked and standardised; values so large that its features overflow float32 are refused."""
    prepared = prepare(check_sequence(seq, spec, name), spec)
    if not np.isfinite(prepared).all():
        raise InputError(f"{name}: values too large for this model's features (largest |value| {np.abs(seq).max():.3g})")
    return prepared


class Prepare:
    """``prepare`` bound to a spec, as a dataset transform."""

    def __init__(self, spec: dict[str, Any]):
        self.spec = spec

    def __call__(self, seq: np.ndarray) -> np.ndarray:
        return prepare(seq, self.spec)


def pad_batch(seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded (B, T_max, F) float32 batch and its (B,) int64 lengths."""
    lengths = np.array([len(s) for s in seqs], np.int64)
    batch = np.zeros((len(seqs), int(lengths.max()), seqs[0].shape[1]), np.float32)
    for i, s in enumerate(seqs):
        batch[i, : len(s)] = s
    return batch, lengths


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)

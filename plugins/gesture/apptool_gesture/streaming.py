"""Frame-by-frame recognition through the ``step`` graph (numpy only: runs on torch or ONNX Runtime).

The caller keeps the state between frames, as a live application would; a
zero state starts a sequence.  A batch of sequences of different lengths is
streamed together, each one's answer read at its own last frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from apptool.errors import InputError
from apptool_gesture.features import input_spec
from apptool_gesture.settings import model_options


def streaming_available(config: dict[str, Any]) -> bool:
    return not model_options(config)["bidirectional"]


def initial_state(config: dict[str, Any], batch: int) -> dict[str, np.ndarray]:
    """Zero state of the step graph for ``batch`` sequences: buf (conv front end), h, c for LSTM, sum and count with pooling."""
    opts = model_options(config)
    state = {}
    if opts["conv_channels"] and opts["conv_kernel"] > 1:
        state["buf"] = np.zeros((batch, opts["conv_kernel"] - 1, input_spec(config)["n_features"]), np.float32)
    state["h"] = np.zeros((opts["layers"], batch, opts["hidden"]), np.float32)
    if opts["cell"] == "lstm":
        state["c"] = np.zeros_like(state["h"])
    if opts["pool"]:
        state["sum"] = np.zeros((batch, opts["hidden"]), np.float32)
        state["count"] = np.zeros((batch, 1), np.float32)
    return state


def step(runner, frame: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits (B, C) after one (B, F) frame, and the state to pass with the next frame."""
    out = runner.run("step", {"x": frame, **state})
    return out["logits"], {name: out[f"{name}_out"] for name in state}


def stream(runner, batch: np.ndarray, lengths: np.ndarray, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame logits (B, T, C) of a padded batch fed one frame at a time, and each sequence's final logits."""
    if not streaming_available(config):
        raise InputError(
            "streaming is unavailable: this model is bidirectional (it needs the whole sequence); "
            "train with model.bidirectional=false for frame-by-frame recognition"
        )
    state = initial_state(config, len(batch))
    frames = []
    for t in range(batch.shape[1]):
        logits, state = step(runner, batch[:, t], state)
        frames.append(logits)
    per_frame = np.stack(frames, 1)
    return per_frame, per_frame[np.arange(len(batch)), lengths - 1]

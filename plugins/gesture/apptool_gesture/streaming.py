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
from apptool_gesture.rocket_plan import state_sizes
from apptool_gesture.settings import model_options, rocket_length


def streaming_available(config: dict[str, Any]) -> bool:
    return not model_options(config)["bidirectional"]


def state_shapes(config: dict[str, Any], batch: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the step graph's state, in its input order: the recurrent branch's conv buffer, h, c for LSTM,
    the pooled sum, one input buffer per FCN block with a kernel over 1, the FCN's sum, MiniRocket's input buffer
    and counts, and the frame count."""
    opts = model_options(config)
    n_features = input_spec(config)["n_features"]
    shapes: dict[str, tuple[int, ...]] = {}
    if opts["conv_channels"] and opts["conv_kernel"] > 1:
        shapes["buf"] = (batch, opts["conv_kernel"] - 1, n_features)
    shapes["h"] = (opts["layers"], batch, opts["hidden"])
    if opts["cell"] == "lstm":
        shapes["c"] = shapes["h"]
    if opts["pool"]:
        shapes["sum"] = (batch, opts["hidden"])
    channels = list(opts["fcn_channels"])
    for i, (width, kernel) in enumerate(zip([n_features, *channels], opts["fcn_kernels"])):
        if kernel > 1:
            shapes[f"fcn_buf{i}"] = (batch, kernel - 1, width)
    if channels:
        shapes["fcn_sum"] = (batch, channels[-1])
    if opts["rocket_features"]:
        frames, features = state_sizes(rocket_length(config), opts["rocket_features"])
        shapes["rocket_buf"] = (batch, frames, n_features)
        shapes["rocket_counts"] = (batch, features)
    if opts["pool"] or channels or opts["rocket_features"]:
        shapes["count"] = (batch, 1)
    return shapes


def initial_state(config: dict[str, Any], batch: int) -> dict[str, np.ndarray]:
    """Zero state of the step graph for ``batch`` sequences: what starts a sequence."""
    return {name: np.zeros(shape, np.float32) for name, shape in state_shapes(config, batch).items()}


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

"""Training-time augmentation of model inputs: window slicing, per-channel scaling and jitter (numpy only).

A few dozen series (a UCR training split) are memorised long before the
step budget is spent; a random window of each series (Le Guennec et al. 2016,
"window slicing"), a random gain per channel and a little noise make every
epoch's series new.  The convolutional branch averages over time, so a model
trained on windows reads the whole series at test time.  Windows are also
capped at ``max_frames``: a step on a 1,460-frame series costs six times one
on 251 frames, and 512 frames hold many times the patterns the kernels see
while a 427-frame leaf outline still trains whole.

Draws come from (seed, epoch, index), so a resumed run augments exactly as an
uninterrupted one (the trainer announces the epoch through ``set_epoch``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

AUGMENT_DEFAULTS: dict[str, Any] = {
    "window": 0.9,  # shortest random window kept, as a share of the sequence; 1 keeps it whole
    "max_frames": 512,  # longest window trained on; 0: no cap
    "scale": 0.1,  # per-channel gain drawn from [1 - scale, 1 + scale]
    "noise": 0.03,  # Gaussian noise, in standard deviations of the standardised input
}


class Augment:
    """Random window, gain and noise of one standardised (T, F) input, drawn from (seed, epoch, index)."""

    def __init__(self, options: dict[str, Any], seed: int):
        self.options, self.seed, self.epoch = {**AUGMENT_DEFAULTS, **options}, int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, x: np.ndarray, index: int) -> np.ndarray:
        opts = self.options
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        frames = len(x)
        length = max(1, int(round(frames * rng.uniform(min(float(opts["window"]), 1.0), 1.0))))
        if int(opts["max_frames"]) > 0:
            length = min(length, int(opts["max_frames"]))
        start = int(rng.integers(0, frames - length + 1))
        window = x[start : start + length]
        gain = rng.uniform(1 - float(opts["scale"]), 1 + float(opts["scale"]), (1, x.shape[1]))
        return (window * gain + rng.normal(0.0, float(opts["noise"]), window.shape)).astype(np.float32)

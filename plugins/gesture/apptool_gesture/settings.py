"""Default configuration and presets of the gesture task (plain data, no torch)."""

from __future__ import annotations

from typing import Any

from apptool_gesture.augment import AUGMENT_DEFAULTS
from apptool_gesture.generator import GESTURES

MODEL_DEFAULTS: dict[str, Any] = {
    "cell": "lstm",  # "lstm" | "gru"
    "hidden": 64,
    "layers": 1,  # the FCN branch carries most of the accuracy; a second one costs as much again per frame
    "bidirectional": False,  # true: offline only, no streaming graph
    "dropout": 0.2,
    "conv_channels": 32,  # causal 1-D conv front end; 0 disables it
    "conv_kernel": 5,
    "pool": True,  # classify from the last output and the mean of all outputs (long recordings need it)
    "fcn_channels": [128, 256, 128],  # causal FCN branch beside the LSTM (LSTM-FCN, Wang et al.'s widths); [] disables it
    "fcn_kernels": [8, 5, 3],
    "rocket_features": 10_000,  # MiniRocket head beside the network (rocket.py), fitted in closed form; 0 disables it
}

DEFAULT_CONFIG: dict[str, Any] = {
    "model": dict(MODEL_DEFAULTS),
    "data": {
        "kind": "pen",  # built-in generator: "pen" (x, y) trajectories or "accel" 3-axis signals
        "train_per_class": 200,
        "test_per_class": 60,
        "min_len": 20,
        "max_len": 100,
        "idle_frames": 10,
        "fps": 50,  # frame rate of generated sequences; drawn strokes are resampled to it
        "scale": [0.25, 1.0],
        "max_rotation_deg": 30,
        "jitter": 0.06,
        "noise": 0.02,
        "accel_noise": 0.03,  # accelerometer noise, in g
        "max_tilt_deg": 20,
        "series_norm": False,  # z-normalise each sequence over itself first (the UCR convention)
        "target_frames": 0,  # >0: average frames in blocks so the training median is at most this long (features.py)
    },
    "augment": {"enabled": True, **AUGMENT_DEFAULTS},  # the training split's (see augment.py)
    "train": {
        "steps": 1000,  # optimizer steps, whatever the data's size: 10 epochs of the generator, 250 of 50 series
        "min_epochs": 10,
        "max_epochs": 500,
        "batch_size": 16,
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "grad_clip": 1.0,
        "schedule": "cosine",
        "val_fraction": 0.1,
        "min_val_size": 30,  # 10 % of a 50-series UCR set is 5: too few to pick weights by, so all 50 train
        "balance_classes": True,
    },
}

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "model": {
            "hidden": 16,
            "layers": 1,
            "conv_channels": 8,
            "conv_kernel": 3,
            "dropout": 0.0,
            "fcn_channels": [8, 8],
            "fcn_kernels": [3, 3],
            "rocket_features": 336,
        },
        "data": {"train_per_class": 8, "test_per_class": 3, "min_len": 12, "max_len": 30},
        "train": {"steps": 0, "epochs": 2, "batch_size": 16},
    },
    "quick": {},
    "full": {
        "model": {"hidden": 128},
        "data": {"train_per_class": 600, "test_per_class": 150},
        "train": {"steps": 6000, "patience": 8},  # 20 epochs of the 4,860 generated training sequences
    },
}


def model_options(config: dict[str, Any]) -> dict[str, Any]:
    """The config's model section over the defaults, so older or partial configs still read."""
    before = {"pool": False, "fcn_channels": [], "fcn_kernels": [], "rocket_features": 0}  # what older bundles mean
    return {**MODEL_DEFAULTS, **before, **config.get("model", {})}


def rocket_length(config: dict[str, Any]) -> int:
    """The series length MiniRocket's dilations are fitted to: the training split's median, else the generator's longest."""
    return int(config.get("input", {}).get("median_frames") or config.get("data", DEFAULT_CONFIG["data"])["max_len"])


def class_names(config: dict[str, Any]) -> list[str]:
    """The model's classes: from the training data, else the generator's gestures."""
    return list(config.get("labels", GESTURES))

"""Procedural gestures: 2-D pen trajectories and 3-axis accelerometer-like signals, deterministic by seed.

Every gesture starts as a clean template path in a unit box (y up).  A sample
then varies the way people do: size, aspect, rotation, a smooth wobble of the
path (jitter), its length in frames and its speed profile along the path
(a mix of constant speed and the bell-shaped minimum-jerk profile, with a
random ripple), and measurement noise.  ``kind="accel"`` turns the same
trajectory into what a hand-held accelerometer would read: the path's second
derivative in g, plus gravity, seen through a randomly tilted sensor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from apptool.errors import ConfigError

GESTURES = ("circle", "swipe_left", "swipe_right", "swipe_up", "swipe_down", "zigzag", "check", "cross", "spiral")
KINDS = {"pen": 2, "accel": 3}  # kind -> channels of a raw sequence
#: Physical size of the unit box, in metres, when a trajectory becomes acceleration.
ARM_SPAN_M = 0.4
GRAVITY = 9.81


def _circle(rng: np.random.Generator) -> np.ndarray:
    start, turn = rng.uniform(0, 2 * np.pi), rng.choice([-1.0, 1.0])
    angle = start + turn * np.linspace(0, 2 * np.pi * rng.uniform(0.8, 1.1), 200)
    return 0.5 * np.stack([np.cos(angle), np.sin(angle)], 1)


def _spiral(rng: np.random.Generator) -> np.ndarray:
    start, turn, turns = rng.uniform(0, 2 * np.pi), rng.choice([-1.0, 1.0]), rng.uniform(1.4, 2.6)
    u = np.linspace(0, 1, 300)
    inner = rng.uniform(0.03, 0.2)
    radius = inner + (0.5 - inner) * u
    angle = start + turn * 2 * np.pi * turns * u
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)


def _swipe(dx: float, dy: float) -> Callable[[np.random.Generator], np.ndarray]:
    def make(rng: np.random.Generator) -> np.ndarray:
        bow = rng.uniform(-0.12, 0.12)  # a hand's swipe is a shallow arc, not a ruler line
        u = np.linspace(-0.5, 0.5, 50)
        along, across = u, bow * (1 - 4 * u**2)
        return np.stack([along * dx - across * dy, along * dy + across * dx], 1)

    return make


def _zigzag(rng: np.random.Generator) -> np.ndarray:
    corners = int(rng.integers(4, 8))
    x = np.linspace(-0.5, 0.5, corners)
    y = 0.25 * np.where(np.arange(corners) % 2 == 0, -1.0, 1.0)
    return np.stack([x, y], 1)


def _check(rng: np.random.Generator) -> np.ndarray:
    return np.array([[-0.35, 0.05], [-0.1, -0.25 + rng.uniform(-0.05, 0.05)], [0.45, 0.4]])


def _cross(rng: np.random.Generator) -> np.ndarray:
    # Two strokes; the pen-up travel between them is part of the motion (as a mouse records it).
    return np.array([[-0.4, 0.4], [0.4, -0.4], [0.4, 0.4], [-0.4, -0.4]])


TEMPLATES: dict[str, Callable[[np.random.Generator], np.ndarray]] = {
    "circle": _circle,
    "swipe_left": _swipe(-1, 0),
    "swipe_right": _swipe(1, 0),
    "swipe_up": _swipe(0, 1),
    "swipe_down": _swipe(0, -1),
    "zigzag": _zigzag,
    "check": _check,
    "cross": _cross,
    "spiral": _spiral,
}


def resample_path(points: np.ndarray, progress: np.ndarray) -> np.ndarray:
    """Points at fractions ``progress`` (0..1) of the polyline's arc length."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    arc /= max(arc[-1], 1e-9)
    return np.stack([np.interp(progress, arc, points[:, d]) for d in range(points.shape[1])], 1)


def _speed_profile(rng: np.random.Generator, n: int) -> np.ndarray:
    """Monotone progress 0..1 over ``n`` frames: min-jerk speed (30u²(1-u)²) and constant speed mixed, with a ripple."""
    u = np.linspace(0, 1, n)
    mix = rng.uniform(0.2, 0.9)
    ripple = rng.uniform(0, 0.3) * np.sin(2 * np.pi * rng.integers(1, 4) * u + rng.uniform(0, 2 * np.pi))
    speed = np.maximum(mix * 30 * u**2 * (1 - u) ** 2 + (1 - mix) + ripple, 0.05)
    progress = np.concatenate([[0.0], np.cumsum((speed[1:] + speed[:-1]) / 2)])
    return progress / progress[-1] if n > 1 else np.zeros(1)


def _wobble(rng: np.random.Generator, n: int, amplitude: float) -> np.ndarray:
    """A smooth 2-D perturbation along the path: a few low-frequency sinusoids."""
    u = np.linspace(0, 1, n)[:, None]
    freq = rng.uniform(0.5, 3.0, (1, 3))
    phase = rng.uniform(0, 2 * np.pi, (2, 1, 3))
    gains = rng.normal(0, amplitude / 2, (2, 1, 3))
    return np.stack([(gains[d] * np.sin(2 * np.pi * freq * u + phase[d])).sum(1) for d in range(2)], 1)


def pen_trajectory(label: str, rng: np.random.Generator, cfg: dict[str, Any]) -> np.ndarray:
    """A clean-then-varied (T, 2) pen path of gesture ``label`` (unit box, y up), without sensor noise."""
    path = resample_path(TEMPLATES[label](rng), np.linspace(0, 1, 400))
    path = path + _wobble(rng, len(path), float(cfg.get("jitter", 0.03)))
    scale = rng.uniform(*cfg.get("scale", (0.4, 1.0))) * rng.uniform(0.75, 1.25, 2)
    angle = np.deg2rad(rng.uniform(-1, 1) * float(cfg.get("max_rotation_deg", 15)))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    path = (path * scale) @ rot.T + rng.uniform(-0.2, 0.2, 2)
    length = int(rng.integers(int(cfg.get("min_len", 30)), int(cfg.get("max_len", 100)) + 1))
    path = resample_path(path, _speed_profile(rng, length))
    idle = int(cfg.get("idle_frames", 0))  # the hand rests a moment before and after the gesture
    before, after = rng.integers(0, idle + 1, 2)
    return np.concatenate([np.repeat(path[:1], before, 0), path, np.repeat(path[-1:], after, 0)])


def _smooth(path: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """Gaussian smoothing along time: a hand rounds the template's sharp corners."""
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(path, ((radius, radius), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, d], kernel, mode="valid") for d in range(path.shape[1])], 1)


def pen_to_accel(path: np.ndarray, fps: float, tilt: np.ndarray | None = None) -> np.ndarray:
    """The (T, 3) acceleration (in g, gravity included) of a hand moving a sensor along ``path``.

    The gesture is drawn in the vertical x-y plane, so gravity is +1 g on y for
    an upright sensor; ``tilt`` (a 3x3 rotation) is how the sensor sits in the hand.
    """
    pos = np.concatenate([_smooth(path) * ARM_SPAN_M, np.zeros((len(path), 1))], 1)
    if len(pos) >= 3:
        vel = np.gradient(pos, 1.0 / fps, axis=0)
        acc = np.gradient(vel, 1.0 / fps, axis=0) / GRAVITY
    else:
        acc = np.zeros_like(pos)
    acc[:, 1] += 1.0
    return acc @ tilt.T if tilt is not None else acc


def _random_tilt(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    rx, ry, rz = np.deg2rad(rng.uniform(-max_deg, max_deg, 3))
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return mz @ my @ mx


def generator_kind(cfg: dict[str, Any]) -> str:
    """``cfg["kind"]`` checked: ``pen`` or ``accel``."""
    kind = cfg.get("kind", "pen")
    if kind not in KINDS:
        raise ConfigError(f"data.kind = {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


def make_gesture(label: str, rng: np.random.Generator, cfg: dict[str, Any]) -> np.ndarray:
    """One raw sequence of gesture ``label``: (T, 2) pen positions or (T, 3) accelerations."""
    kind = generator_kind(cfg)
    path = pen_trajectory(label, rng, cfg)
    if kind == "pen":
        seq = path + rng.normal(0, float(cfg.get("noise", 0.01)), path.shape)
    else:
        seq = pen_to_accel(path, float(cfg.get("fps", 50)), _random_tilt(rng, float(cfg.get("max_tilt_deg", 20))))
        seq = seq + rng.normal(0, float(cfg.get("accel_noise", 0.03)), seq.shape)  # sensor noise, in g
    return seq.astype(np.float32)


def generate(cfg: dict[str, Any], n_per_class: int, seed: int) -> tuple[list[np.ndarray], list[int]]:
    """``n_per_class`` sequences of every gesture, shuffled; labels index ``GESTURES``."""
    rng = np.random.default_rng(seed)
    labels = [c for c in range(len(GESTURES)) for _ in range(n_per_class)]
    rng.shuffle(labels)
    return [make_gesture(GESTURES[c], rng, cfg) for c in labels], labels

"""Strokes drawn in the browser — timed points, not pixels — as model input sequences (numpy only).

The canvas sends JSON: ``{"width": W, "height": H, "points": [[x, y, t_ms, stroke], ...]}``
(a bare list of ``[x, y, t_ms]`` points also works, for API callers).  Points
are resampled uniformly in time at the model's frame rate, so a slow and a
fast circle become sequences of different lengths exactly as the generator
makes them.  Between two strokes (the cross) the pen travels in a straight
line at the drawing's mean speed, as in the generator, however long the
user paused.
Canvas pixels map to the generator's unit box (y up, the canvas's shorter
side = 1), and an accelerometer model gets the acceleration of that path.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from apptool.errors import InputError
from apptool.limits import parse_json
from apptool_gesture.generator import pen_to_accel

MAX_SECONDS = 20.0


def parse_points(text: str) -> tuple[np.ndarray, float, float]:
    """(N, 4) array of x, y, t (ms), stroke number and the canvas width and height, from the canvas JSON."""
    if not text or not text.strip():
        raise InputError("no stroke yet: draw a gesture on the canvas first")
    payload = parse_json(text, "stroke points")  # capped by size and by count: the text comes from any client
    points = payload.get("points") if isinstance(payload, dict) else payload
    width = float(payload.get("width", 400)) if isinstance(payload, dict) else 400.0
    height = float(payload.get("height", width)) if isinstance(payload, dict) else width
    try:
        array = np.array([[float(v) for v in p[:3]] + [float(p[3]) if len(p) > 3 else 0.0] for p in points or []], np.float64)
    except (TypeError, ValueError, IndexError, KeyError):
        raise InputError("stroke points must be [x, y, t_ms] or [x, y, t_ms, stroke] numbers") from None
    if array.ndim != 2 or len(array) < 2:
        raise InputError("a gesture needs at least 2 points of [x, y, t_ms]")
    if not np.isfinite(array).all() or width <= 0 or height <= 0:
        raise InputError("stroke points and canvas size must be finite, positive numbers")
    return array, width, height


def _close_gaps(points: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Times with every pause between strokes replaced by straight travel at the pen's mean speed."""
    step = np.diff(t)
    dist = np.linalg.norm(np.diff(points[:, :2], axis=0), axis=1)
    lift = np.diff(points[:, 3]) != 0
    down = ~lift & (step > 0)
    speed = dist[down].sum() / step[down].sum() if down.any() and dist[down].sum() > 0 else None
    if speed is None or not lift.any():
        return t
    step = np.where(lift, np.maximum(dist / speed, 1e-3), step)
    return np.concatenate([[0.0], np.cumsum(step)])


def points_to_path(points: np.ndarray, width: float, height: float, fps: float) -> np.ndarray:
    """(T, 2) pen positions in the unit box, one per frame at ``fps``."""
    points = points[np.lexsort((points[:, 2], points[:, 3]))]  # by stroke, then time
    t = _close_gaps(points, (points[:, 2] - points[0, 2]) / 1000.0)
    keep = np.concatenate([[True], np.diff(t) > 0])  # two events at one instant: keep the first
    points, t = points[keep], t[keep]
    if t[-1] > MAX_SECONDS:
        raise InputError(f"the gesture lasts {t[-1]:.1f} s; draw it in under {MAX_SECONDS:.0f} s")
    frames = np.arange(0.0, t[-1] + 1e-9, 1.0 / fps) if t[-1] > 0 else np.zeros(1)
    if len(frames) < 2:
        raise InputError("the gesture is too short: draw for longer than one frame")
    side = min(width, height)
    x = (np.interp(frames, t, points[:, 0]) - width / 2) / side
    y = -(np.interp(frames, t, points[:, 1]) - height / 2) / side
    return np.stack([x, y], 1).astype(np.float32)


def stroke_to_sequence(text: str, config: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The model's raw input for a drawn gesture, and the (T, 2) path it came from."""
    spec = config["input"]
    dataset = config.get("dataset", {})
    if dataset.get("format") != "generator":
        raise InputError(
            "drawing works with models trained on the built-in generator; this one was trained on "
            f"{dataset.get('format', 'other')} data with {spec['raw_dims']} channels: upload a sequence"
        )
    points, width, height = parse_points(text)
    path = points_to_path(points, width, height, float(spec["fps"]))
    if dataset.get("kind") == "accel":
        return pen_to_accel(path, float(spec["fps"])).astype(np.float32), path
    return path, path

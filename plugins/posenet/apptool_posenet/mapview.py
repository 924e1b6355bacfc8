"""Top-down map of a scene drawn with OpenCV: buildings, the training trajectory, camera poses.

The map frame comes from the bundle config (``scene.map_axes``, ``scene.map_origin``):
the ground plane for the built-in scene, the plane of largest spread of the
camera centres for a real one.  A pose is a dot with its field of view as a wedge.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from apptool_posenet.geometry import viewing_direction

BACKGROUND = (246, 244, 238)
TRAJECTORY = (150, 150, 150)
BUILDING = (120, 110, 100)


def to_map(scene: dict[str, Any], xyz: np.ndarray) -> np.ndarray:
    """World points (..., 3) to map coordinates (..., 2) in metres."""
    axes, origin = np.asarray(scene["map_axes"]), np.asarray(scene["map_origin"])
    return (np.asarray(xyz, np.float64) - origin) @ axes.T


def heading(scene: dict[str, Any], quat: np.ndarray) -> np.ndarray:
    """Unit 2D direction of the optical axis on the map (zero if the camera looks straight along the map normal)."""
    direction = np.asarray(scene["map_axes"]) @ viewing_direction(quat)
    norm = np.linalg.norm(direction)
    return direction / norm if norm > 1e-6 else np.zeros(2)


class MapFrame:
    """Metres to pixels for a square map that holds the trajectory, the buildings and the given points."""

    def __init__(self, scene: dict[str, Any], points: np.ndarray, size: int):
        parts = [np.asarray(scene["trajectory"], np.float64).reshape(-1, 2)]
        parts += [np.asarray(f, np.float64) for f in scene.get("footprints", [])]
        base = np.vstack(parts)
        lo, hi = base.min(axis=0), base.max(axis=0)
        span = max(float((hi - lo).max()), 1.0)
        if len(points):  # widen for poses off the map, but not without bound for a wild prediction
            pts = np.clip(np.asarray(points).reshape(-1, 2), lo - span, hi + span)
            lo, hi = np.minimum(lo, pts.min(axis=0)), np.maximum(hi, pts.max(axis=0))
        span = max(float((hi - lo).max()), 1.0) * 1.1
        self.centre = (lo + hi) / 2
        self.size = size
        self.px_per_m = size / span

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, np.float64)
        u = (xy[..., 0] - self.centre[0]) * self.px_per_m + self.size / 2
        v = self.size / 2 - (xy[..., 1] - self.centre[1]) * self.px_per_m
        return np.stack([u, v], axis=-1)


def _scale_bar(canvas: np.ndarray, frame: MapFrame) -> None:
    target = frame.size / 5 / frame.px_per_m
    metres = float(10 ** np.floor(np.log10(target)))
    for step in (5, 2):
        if step * metres <= target:
            metres *= step
            break
    length = int(round(metres * frame.px_per_m))
    y = frame.size - 14
    cv2.line(canvas, (12, y), (12 + length, y), (40, 40, 40), 2)
    cv2.putText(canvas, f"{metres:g} m", (12, y - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (40, 40, 40), 1, cv2.LINE_AA)


def draw_map(
    scene: dict[str, Any],
    poses: list[tuple[np.ndarray, np.ndarray, tuple[int, int, int]]],
    size: int = 400,
    hfov_deg: float = 60.0,
    trails: list[tuple[np.ndarray, tuple]] = (),
    errors: tuple[np.ndarray, np.ndarray, tuple[int, int, int]] | None = None,
) -> np.ndarray:
    """RGB map with buildings, the training trajectory and poses (xyz, quaternion, colour).

    ``trails`` are (N, 3) paths drawn as lines; ``errors`` (true (N, 3), predicted (N, 3), colour)
    draws each prediction as a dot tied to its true position.
    """
    flat = [to_map(scene, xyz) for xyz, _, _ in poses] + [to_map(scene, t) for t, _ in trails]
    if errors is not None:
        flat.append(to_map(scene, errors[1]))
    frame = MapFrame(scene, np.vstack(flat) if flat else np.zeros((0, 2)), size)
    canvas = np.full((size, size, 3), BACKGROUND, np.uint8)
    for outline in scene.get("footprints", []):
        cv2.fillPoly(canvas, [np.round(frame(np.asarray(outline)) * 16).astype(np.int32)], BUILDING, cv2.LINE_AA, shift=4)
    for point in frame(np.asarray(scene["trajectory"], np.float64).reshape(-1, 2)):
        cv2.circle(canvas, tuple(int(v) for v in point), 1, TRAJECTORY, -1, cv2.LINE_AA)
    for trail, colour in trails:
        pts = np.round(frame(to_map(scene, trail))).astype(np.int32)
        cv2.polylines(canvas, [pts], False, colour, 1, cv2.LINE_AA)
    if errors is not None:
        for true, guess in zip(frame(to_map(scene, errors[0])), frame(to_map(scene, errors[1]))):
            a, b = tuple(int(round(v)) for v in true), tuple(int(round(v)) for v in guess)
            cv2.line(canvas, a, b, tuple(int(0.4 * c + 0.6 * g) for c, g in zip(errors[2], BACKGROUND)), 1, cv2.LINE_AA)
            cv2.circle(canvas, b, 2, errors[2], -1, cv2.LINE_AA)
    half = np.radians(hfov_deg) / 2
    reach = 0.06 * size
    for xyz, quat, colour in poses:
        centre = frame(to_map(scene, xyz))
        direction = heading(scene, quat) * [1, -1]  # map y grows upwards, image rows downwards
        tip = [centre]
        for angle in (-half, half):
            c, s = np.cos(angle), np.sin(angle)
            tip.append(centre + reach * np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]]))
        wedge = np.round(np.array(tip) * 16).astype(np.int32)
        cv2.fillConvexPoly(canvas, wedge, tuple(int(0.5 * c + 0.5 * b) for c, b in zip(colour, BACKGROUND)), cv2.LINE_AA, 4)
        cv2.polylines(canvas, [wedge], True, colour, 1, cv2.LINE_AA, 4)
        cv2.circle(canvas, tuple(int(round(v)) for v in centre), 4, colour, -1, cv2.LINE_AA)
    _scale_bar(canvas, frame)
    return canvas

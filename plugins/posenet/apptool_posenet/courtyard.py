"""A site PoseNet's defaults were never designed around, written in the Cambridge Landmarks layout.

The built-in landmark is one square, walked in hundreds of short walks at
noon light.  A courtyard here is generated from a seed: a ring of buildings
of random widths, depths and heights around a yard of any size, other wall
materials and paving, trees, a few long walks round the yard (as the Cambridge
sequences retrace one route, both ways) looking across it at the far facades,
at dusk, through another lens and image shape.  It exists so that
``benchmarks/foreign_data.py`` can check the defaults on data nobody tuned
them for.

An earlier version was a benchmark no method could solve: its walks faced the
wall a few metres beside the path (frames of nothing but one window grid),
each covered half the loop in a random direction (half the test frames had no
training frame within 3 m looking within 30 degrees of the same way), the
sun stood anywhere on the horizon (a facade lit on one walk, black on the
next) and vans stood on the route.  Its ~65 degree orientation errors, for
the regressor and nearest neighbour alike, measured that, not the methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from apptool_posenet.cambridge import write_split
from apptool_posenet.generator import render_walk, smooth_noise
from apptool_posenet.geometry import look_rotation
from apptool_posenet.scene import SIGN_PHOTOS, Layout, Lighting, landmark
from apptool_posenet.structure import write_structure

WALLS = ("coins", "moon", "camera", "page", "horse", "cell")  # not the built-in brick and gravel
MARGIN_M = 4.0  # walks keep this far from the walls


@dataclass(frozen=True)
class CourtyardSettings:
    """What to render: the yard (width, depth in metres), the camera and the walks."""

    seed: int = 0
    yard_m: tuple[float, float] = (70.0, 45.0)
    image_size: tuple[int, int] = (224, 126)  # 16:9, as Cambridge Landmarks' video frames
    hfov_deg: float = 50.0
    train_walks: int = 6
    test_walks: int = 2
    frames_per_walk: int = 200
    step_m: float = 1.0  # 200 frames make one lap of the loop or more


def courtyard_layout(settings: CourtyardSettings) -> Layout:
    """Buildings around the yard (alleys between some), trees in it and a lawn, all drawn from ``settings.seed``."""
    rng = np.random.default_rng([int(settings.seed), 11])
    half_w, half_d = settings.yard_m[0] / 2, settings.yard_m[1] / 2
    buildings = []

    def row(start: float, end: float, place) -> None:
        x = start
        while x < end - 1.0:
            width = min(float(rng.uniform(10.0, 30.0)), end - x)
            depth, height = float(rng.uniform(8.0, 16.0)), float(rng.uniform(6.0, 26.0))
            posters = tuple(SIGN_PHOTOS[int(rng.integers(len(SIGN_PHOTOS)))] if rng.random() < 0.3 else None for _ in range(4))
            colour = tuple(float(c) for c in rng.uniform(70, 230, 3))
            floors = max(2, int(height // 3.5))
            buildings.append((*place(x, x + width, depth), height, WALLS[int(rng.integers(len(WALLS)))], colour, floors, posters))
            x += width + (float(rng.uniform(2.0, 5.0)) if rng.random() < 0.3 else 0.0)  # an alley now and then

    row(-half_w, half_w, lambda a, b, d: (a, b, -half_d - d, -half_d))  # south
    row(-half_w, half_w, lambda a, b, d: (a, b, half_d, half_d + d))  # north
    row(-half_d, half_d, lambda a, b, d: (-half_w - d, -half_w, a, b))  # west
    row(-half_d, half_d, lambda a, b, d: (half_w, half_w + d, a, b))  # east
    trees = tuple((float(x), float(y)) for x, y in rng.uniform([-half_w + 6, -half_d + 6], [half_w - 6, half_d - 6], (8, 2)))
    lawn_w, lawn_d = settings.yard_m[0] * rng.uniform(0.15, 0.3), settings.yard_m[1] * rng.uniform(0.15, 0.3)
    cx, cy = rng.uniform(-0.2, 0.2, 2) * settings.yard_m
    walk = (-half_w + MARGIN_M, half_w - MARGIN_M, -half_d + MARGIN_M, half_d - MARGIN_M)
    lawn = (float(cx - lawn_w / 2), float(cx + lawn_w / 2), float(cy - lawn_d / 2), float(cy + lawn_d / 2))
    return Layout(tuple(buildings), trees, walk, lawn, int(rng.integers(2**31)), paving=("gravel", "grass"))


def dusk(rng: np.random.Generator) -> Lighting:
    """Low sun in the west, warm cast, dim ambient light: lighting the built-in generator never draws.

    The sun sets in the west (azimuth 240-300 degrees from north): a sun from any side, as the noon
    weather of the built-in scene draws it, would light a facade on one walk and leave it black on the
    next, which no evening at a real place does.
    """
    azimuth, elevation = rng.uniform(np.radians(240), np.radians(300)), rng.uniform(np.radians(3), np.radians(20))
    sun = np.array([np.cos(elevation) * np.sin(azimuth), np.cos(elevation) * np.cos(azimuth), np.sin(elevation)])
    return Lighting(
        sun=sun,
        sun_strength=float(rng.uniform(0.3, 0.7)),
        ambient=float(rng.uniform(0.25, 0.45)),
        tint=np.array([1.15, 0.97, 0.8]) * rng.uniform(0.9, 1.1, 3),
        horizon=np.array([240.0, 170.0, 120.0]) * rng.uniform(0.7, 1.0),
        zenith=np.array([60.0, 70.0, 120.0]) * rng.uniform(0.6, 1.0),
        gain=float(rng.uniform(0.8, 1.1)),
    )


def parking_area(layout: Layout) -> tuple[float, float, float, float]:
    """The middle of the yard, inside the innermost loop a walk takes: vans stand there, never on the route."""
    x0, x1, y0, y1 = layout.walk_area
    inset = min(x1 - x0, y1 - y0) / 4 + 3.0  # the largest inset of a loop, and a van's length to spare
    return (x0 + inset, x1 - inset, y0 + inset, y1 - inset)


def loop_walk(
    rng: np.random.Generator, layout: Layout, n_frames: int, step_m: float, clockwise: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres and rotations of a walk along the loop round the yard, looking across it at the far facades.

    As in Cambridge Landmarks, every walk follows the same route (a loop some metres in from the
    buildings, from anywhere on it), and the visitor photographs the buildings across the yard, so a
    frame holds several facades, their roofline, the sky and the paving, as a photograph of a place
    does.  Each walk has its own distance from the walls, its own angle between path and gaze and
    slow pans; walks alternate direction, so test walks retrace the training route, both ways,
    without repeating a training walk.
    """
    x0, x1, y0, y1 = layout.walk_area
    inset = rng.uniform(0.0, min(x1 - x0, y1 - y0) / 4)
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]) + inset * np.array(
        [[1, 1], [-1, 1], [-1, -1], [1, -1], [1, 1]]
    )
    edges = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(edges)])
    direction = -1.0 if clockwise else 1.0
    s = (rng.uniform(0, arc[-1]) + direction * step_m * np.arange(n_frames)) % arc[-1]
    xy = np.stack([np.interp(s, arc, corners[:, 0]), np.interp(s, arc, corners[:, 1])], axis=1)
    xy += np.column_stack([smooth_noise(rng, n_frames, 1.0, knots=9), smooth_noise(rng, n_frames, 1.0, knots=9)])
    travel = np.gradient(xy, axis=0)
    travel /= np.maximum(np.linalg.norm(travel, axis=1, keepdims=True), 1e-9)
    window = min(9, n_frames)
    travel = np.stack([np.convolve(travel[:, k], np.ones(window) / window, mode="same") for k in (0, 1)], axis=1)  # round corners
    travel /= np.maximum(np.linalg.norm(travel, axis=1, keepdims=True), 1e-9)
    half = np.array([(x1 - x0) / 2, (y1 - y0) / 2])
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    rel = (xy - centre) / half
    inward = -np.where(np.abs(rel[:, :1]) > np.abs(rel[:, 1:]), [[1.0, 0.0]], [[0.0, 1.0]]) * np.sign(rel)
    angle = rng.uniform(np.radians(45), np.radians(80))
    gaze = np.cos(angle) * travel + np.sin(angle) * inward
    yaw = np.arctan2(gaze[:, 0], gaze[:, 1]) + smooth_noise(rng, n_frames, np.radians(10), knots=max(3, n_frames // 30))
    pitch = rng.uniform(0.0, np.radians(12)) + smooth_noise(rng, n_frames, np.radians(3))
    roll = smooth_noise(rng, n_frames, np.radians(3), knots=9)
    height = rng.uniform(1.45, 1.8) + 0.03 * np.sin(np.arange(n_frames) * np.pi)
    centres = np.column_stack([np.clip(xy[:, 0], x0, x1), np.clip(xy[:, 1], y0, y1), height])
    return centres, np.stack([look_rotation(a, b, c) for a, b, c in zip(yaw, pitch, roll)])


def write_courtyard(folder: Path, settings: CourtyardSettings) -> Path:
    """Render the walks and write them as a Cambridge Landmarks folder (test walks numbered after the training ones, and the NVM)."""
    layout = courtyard_layout(settings)
    walks = {
        "train": range(settings.train_walks),
        "test": range(settings.train_walks, settings.train_walks + settings.test_walks),
    }
    every_name, every_pose = [], []
    for split, numbers in walks.items():
        names, images, poses = [], [], []
        for number in numbers:
            rng = np.random.default_rng([int(settings.seed), 12, number])
            centres, rots = loop_walk(rng, layout, settings.frames_per_walk, settings.step_m, clockwise=number % 2 == 1)
            seq = render_walk(
                f"seq{number + 1}",
                centres,
                rots,
                dusk(rng),
                rng,
                settings.image_size,
                settings.hfov_deg,
                layout,
                parking_area(layout),
            )
            names += [f"seq{number + 1}/frame{j + 1:05d}.png" for j in range(len(seq.images))]
            images += seq.images
            poses.append(seq.poses)
        write_split(Path(folder), split, names, images, np.concatenate(poses), scene=f"apptool courtyard, seed {settings.seed}")
        every_name += names
        every_pose += poses
    write_structure(
        folder, landmark(layout), every_name, np.concatenate(every_pose), settings.image_size, settings.hfov_deg, settings.seed
    )
    return Path(folder)

"""Camera sequences through the built-in landmark, like the walks of Cambridge Landmarks.

Each sequence is one walk: a smooth path through the square sampled at
walking pace, the camera looking roughly at the buildings with slow pans, a
little pitch, roll and head bob.  A sequence has its own weather (sun
direction, ambient light, colour cast, sky) and its own occluders (parked
vans, moving pedestrians).  Training and test sequences come from separate
random streams, so test frames are never frames of a training walk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apptool_posenet.geometry import look_rotation, rot_to_quat
from apptool_posenet.scene import BUILTIN, WALK_AREA, Camera, Layout, Lighting, Quad, box_faces, person_texture, pyramid, render

STEP_M = 0.7  # distance between frames (video at ~2 Hz, walking pace)
STREAMS = {"train": 0, "test": 1, "sample": 2}
LOOK_BACK_EVERY = 4  # every 4th walk of a stream faces the south building, so train and test share the mix
VAN_AREA = (-30.0, 30.0, -20.0, 9.0)  # x0, x1, y0, y1 where the built-in square has parked vans


@dataclass
class Sequence:
    """Rendered frames of one walk with their poses (rows x, y, z, qw, qx, qy, qz)."""

    name: str
    images: list[np.ndarray]
    poses: np.ndarray


def catmull_rom(points: np.ndarray, samples_per_segment: int = 50) -> np.ndarray:
    padded = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    t = np.linspace(0, 1, samples_per_segment, endpoint=False)[:, None]
    curve = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1 : i + 3]
        curve.append(
            0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    curve.append(points[-1:])
    return np.vstack(curve)


def smooth_noise(rng: np.random.Generator, n: int, scale: float, knots: int = 5) -> np.ndarray:
    """A slowly varying random signal of ``n`` samples (linear interpolation of a few random knots)."""
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, knots), rng.normal(0, scale, knots))


def walk(rng: np.random.Generator, n_frames: int, look_back: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres (n, 3) and world-to-camera rotations (n, 3, 3) of one walk.

    The camera looks at the landmark (the hall and its tower), or with ``look_back`` across the square
    at the south building.
    """
    x0, x1, y0, y1 = WALK_AREA
    while True:
        controls = rng.uniform([x0, y0], [x1, y1], size=(4, 2))
        if np.all(np.linalg.norm(np.diff(controls, axis=0), axis=1) > 8.0):
            break
    curve = catmull_rom(controls)
    curve[:, 0] = np.clip(curve[:, 0], x0, x1)
    curve[:, 1] = np.clip(curve[:, 1], y0, y1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    length = min(arc[-1], STEP_M * (n_frames - 1))
    start = rng.uniform(0, arc[-1] - length)
    s = start + np.linspace(0, length, n_frames)
    xy = np.stack([np.interp(s, arc, curve[:, 0]), np.interp(s, arc, curve[:, 1])], axis=1)
    z = 1.6 + rng.normal(0, 0.05) + 0.03 * np.sin(s / STEP_M * np.pi)
    centres = np.column_stack([xy, z])
    # gaze: the photographer keeps the landmark in view, a point on it drifting across its front
    lo, hi = ([-20.0, 2.0], [10.0, 7.0]) if look_back else ([-12.0, 4.0], [12.0, 13.0])
    ends = rng.uniform(lo, hi, size=(2, 2))
    t = np.linspace(0, 1, n_frames)
    target = np.column_stack(
        [ends[0, 0] + t * (ends[1, 0] - ends[0, 0]), np.full(n_frames, 16.0), ends[0, 1] + t * (ends[1, 1] - ends[0, 1])]
    )
    if look_back:
        target[:, 1] = -24.0
    delta = target - centres
    yaw = np.arctan2(delta[:, 0], delta[:, 1]) + smooth_noise(rng, n_frames, np.radians(6))
    pitch = np.arctan2(delta[:, 2], np.linalg.norm(delta[:, :2], axis=1))
    pitch = np.clip(pitch, np.radians(-5), np.radians(30)) + smooth_noise(rng, n_frames, np.radians(3))
    roll = smooth_noise(rng, n_frames, np.radians(2), knots=9)
    rots = np.stack([look_rotation(a, b, c) for a, b, c in zip(yaw, pitch, roll)])
    return centres, rots


def weather(rng: np.random.Generator) -> Lighting:
    """Lighting for one sequence: time of day and cloud cover."""
    azimuth, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(np.radians(10), np.radians(65))
    sun = np.array([np.cos(elevation) * np.sin(azimuth), np.cos(elevation) * np.cos(azimuth), np.sin(elevation)])
    overcast = rng.random()
    return Lighting(
        sun=sun,
        sun_strength=float(0.7 * (1 - overcast) + 0.1),
        ambient=float(rng.uniform(0.35, 0.6) + 0.2 * overcast),
        tint=rng.uniform(0.88, 1.12, 3),
        horizon=np.array([215.0, 222.0, 232.0]) * rng.uniform(0.8, 1.1),
        zenith=np.array([90.0, 140.0, 210.0]) * (1 - overcast) + np.array([170.0, 175.0, 185.0]) * overcast,
        gain=float(rng.uniform(0.85, 1.15)),
    )


def _vans(rng: np.random.Generator, area: tuple) -> list[Quad]:
    """Parked vans (coloured boxes) in ``area`` (x0, x1, y0, y1) for one sequence."""
    quads = []
    for _ in range(int(rng.integers(1, 4))):
        x, y = rng.uniform([area[0], area[2]], [area[1], area[3]])
        length, width = 4.5, 1.9
        if rng.random() < 0.5:
            length, width = width, length
        colour = rng.uniform(30, 230, 3)
        side = np.full((32, 64, 3), colour, np.uint8)
        side[4:14, 8:56] = (40, 50, 60)  # windows
        faces = box_faces(x - length / 2, x + length / 2, y - width / 2, y + width / 2, 2.0, [pyramid(side)] * 4)
        for face in faces:
            face.kind = "object"
        quads += faces
    return quads


def _people(rng: np.random.Generator, centres: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, list]]:
    """Pedestrians near the walk: start point, velocity (m/frame) and cut-out texture."""
    people = []
    for _ in range(int(rng.integers(2, 7))):
        anchor = centres[int(rng.integers(0, len(centres)))]
        start = anchor[:2] + rng.normal(0, 6, 2)
        heading = rng.uniform(0, 2 * np.pi)
        velocity = 0.5 * np.array([np.cos(heading), np.sin(heading)])
        people.append((start, velocity, pyramid(person_texture(rng))))
    return people


def _billboards(people, frame: int, centre: np.ndarray) -> list[Quad]:
    """Pedestrians at ``frame`` as upright cut-outs turned towards the camera."""
    quads = []
    for start, velocity, mips in people:
        foot = start + frame * velocity
        toward = centre[:2] - foot
        dist = np.linalg.norm(toward)
        if dist < 0.6:
            continue
        right = np.array([toward[1], -toward[0], 0.0]) / dist * 0.5
        origin = np.array([foot[0], foot[1], 1.75]) - right / 2
        quads.append(Quad(origin, right, np.array([0.0, 0.0, -1.75]), mips, kind="object"))
    return quads


def render_sequence(
    name: str, seed: int, stream: str, index: int, n_frames: int, size: tuple[int, int], hfov_deg: float = 60.0
) -> Sequence:
    """Render walk number ``index`` of a stream ("train", "test", "sample") for ``seed``."""
    rng = np.random.default_rng([int(seed), STREAMS[stream], int(index)])
    centres, rots = walk(rng, n_frames, look_back=index % LOOK_BACK_EVERY == LOOK_BACK_EVERY - 1)
    return render_walk(name, centres, rots, weather(rng), rng, size, hfov_deg)


def render_walk(
    name: str,
    centres: np.ndarray,
    rots: np.ndarray,
    light: Lighting,
    rng: np.random.Generator,
    size: tuple[int, int],
    hfov_deg: float,
    layout: Layout = BUILTIN,
    van_area: tuple = VAN_AREA,
) -> Sequence:
    """Frames of one walk through ``layout`` under one weather, with its own parked vans and pedestrians."""
    vans, people = _vans(rng, van_area), _people(rng, centres)
    camera = Camera(*size, hfov_deg=hfov_deg)
    images, poses = [], []
    for i, (centre, rot) in enumerate(zip(centres, rots)):
        light.gain = float(np.clip(light.gain + rng.normal(0, 0.02), 0.7, 1.3))
        objects = vans + _billboards(people, i, centre)
        images.append(render(camera, rot, centre, light, objects, noise=3.0, rng=rng, layout=layout))
        poses.append(np.concatenate([centre, rot_to_quat(rot)]))
    return Sequence(name, images, np.array(poses, np.float64))

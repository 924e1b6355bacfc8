"""Rotations, quaternions and camera poses (numpy only).

Conventions follow the Cambridge Landmarks files: a pose is the camera centre
``C`` in world coordinates and the unit quaternion ``q = (w, x, y, z)`` of the
world-to-camera rotation ``R`` (camera coordinates ``X_c = R (X_w - C)``,
OpenCV axes: x right, y down, z forward).  Quaternions are kept on the
hemisphere ``w >= 0`` because ``q`` and ``-q`` are the same rotation.
"""

from __future__ import annotations

import numpy as np


def canonical(q: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) flipped onto the hemisphere w >= 0."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_to_rot(q: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix of a (w, x, y, z) quaternion."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def rot_to_quat(r: np.ndarray) -> np.ndarray:
    """(w, x, y, z) quaternion with w >= 0 of a 3x3 rotation matrix (Shepperd's method)."""
    r = np.asarray(r, dtype=np.float64)
    trace = np.trace(r)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    return canonical(np.array(q))


def look_rotation(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """World-to-camera rotation of a camera heading ``yaw`` (radians from +y towards +x), tilted up by ``pitch``.

    The world is z-up; ``roll`` turns the image clockwise about the optical axis.
    """
    forward = np.array([np.cos(pitch) * np.sin(yaw), np.cos(pitch) * np.cos(yaw), np.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    base = np.stack([right, down, forward])
    c, s = np.cos(roll), np.sin(roll)
    spin = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return spin @ base


def mean_rotation(quats: np.ndarray) -> np.ndarray:
    """(..., K, 4) -> (..., 4): the normalised sum of K estimates of one rotation, each first signed like the first."""
    signs = np.where((quats * quats[..., :1, :]).sum(axis=-1, keepdims=True) < 0, -1.0, 1.0)
    return canonical((quats * signs).sum(axis=-2))


def viewing_direction(q: np.ndarray) -> np.ndarray:
    """The camera's optical axis in world coordinates (third row of R)."""
    return quat_to_rot(q)[2]


def intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Pinhole matrix K for an image of ``width`` x ``height`` with horizontal field of view ``hfov_deg``."""
    f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def _turn(dx: float, dy: float, focal: float) -> np.ndarray:
    """The axes of a camera turned to look through pixel (dx, dy), in the old camera's coordinates, as columns."""
    yaw, pitch = np.arctan2(dx, focal), np.arctan2(dy, np.hypot(dx, focal))
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    turn = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])
    return turn @ tilt


def turned_towards(q: np.ndarray, dx: float, dy: float, focal: float) -> np.ndarray:
    """The (w, x, y, z) quaternion of a camera ``q`` turned to look through pixel (dx, dy) from its image centre.

    A crop window moved off the centre of the image is, up to perspective, the view of the same
    camera turned by atan(dx / f) about its vertical axis and then tilted towards dy: the pose a
    moved training crop really shows.  ``focal`` is in the same pixels as ``dx`` and ``dy``.
    """
    return rot_to_quat(_turn(dx, dy, focal).T @ quat_to_rot(q))


def turned_back(q: np.ndarray, dx: float, dy: float, focal: float) -> np.ndarray:
    """The camera whose ``turned_towards(·, dx, dy, focal)`` is ``q``: a moved test crop's answer, undone."""
    return rot_to_quat(_turn(dx, dy, focal) @ quat_to_rot(q))

"""The 3D points of a rendered scene and which of them each camera sees: the generators' answer to ``reconstruction.nvm``.

A point counts as seen when it lies in front of the camera, inside the image and on the side of
its surface that faces the camera.  Occlusion by other buildings is not tested: the geometric
loss compares where a point projects under two poses, which is the same whether or not the
point is hidden.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from apptool_posenet.geometry import intrinsics, quat_to_rot
from apptool_posenet.nvm import FILE as NVM_FILE
from apptool_posenet.nvm import write_nvm
from apptool_posenet.scene import Quad

SPACING_M = 1.5
MAX_QUAD_M = 60.0  # quads larger than this are the distant ground, which tells little about the pose
NEAR_M = 0.5
POINTS_PER_IMAGE = 200  # as many as a structure-from-motion model keeps per image, and a small file


def surface_points(quads: tuple[Quad, ...], spacing: float = SPACING_M) -> tuple[np.ndarray, np.ndarray]:
    """Points on a grid over each quad's surface, and each point's surface normal, both (P, 3)."""
    points, normals = [], []
    for quad in quads:
        sides = np.linalg.norm(quad.along), np.linalg.norm(quad.down)
        if max(sides) > MAX_QUAD_M:
            continue
        s, t = np.meshgrid(*[(np.arange(n) + 0.5) / n for n in (max(1, int(side / spacing)) for side in sides)])
        grid = quad.origin + s.reshape(-1, 1) * quad.along + t.reshape(-1, 1) * quad.down
        points.append(grid)
        normals.append(np.broadcast_to(quad.normal, grid.shape))
    return np.concatenate(points), np.concatenate(normals)


def points_in_view(
    points: np.ndarray, normals: np.ndarray, pose: np.ndarray, size: tuple[int, int], hfov_deg: float, rng: np.random.Generator
) -> np.ndarray:
    """Indices (sorted) of the points a camera at ``pose`` (x y z qw qx qy qz) sees, at most ``POINTS_PER_IMAGE`` of them."""
    width, height = size
    k = intrinsics(width, height, hfov_deg)
    in_camera = (points - pose[:3]) @ quat_to_rot(pose[3:]).T
    depth = np.maximum(in_camera[:, 2], 1e-9)
    u = k[0, 0] * in_camera[:, 0] / depth + k[0, 2]
    v = k[1, 1] * in_camera[:, 1] / depth + k[1, 2]
    facing = ((pose[:3] - points) * normals).sum(axis=1) > 0
    ids = np.flatnonzero((in_camera[:, 2] > NEAR_M) & facing & (u >= 0) & (u < width) & (v >= 0) & (v < height))
    if len(ids) > POINTS_PER_IMAGE:
        ids = np.sort(rng.choice(ids, POINTS_PER_IMAGE, replace=False))
    return ids


def scene_structure(
    quads: tuple[Quad, ...], poses: np.ndarray, size: tuple[int, int], hfov_deg: float, seed: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The scene's points (P, 3) and, per pose, the indices of those its camera sees."""
    points, normals = surface_points(quads)
    rng = np.random.default_rng([int(seed), 17])
    return points, [points_in_view(points, normals, pose, size, hfov_deg, rng) for pose in poses]


def write_structure(
    folder: Path, quads: tuple[Quad, ...], names: list[str], poses: np.ndarray, size: tuple[int, int], hfov_deg: float, seed: int
) -> Path:
    """``folder/reconstruction.nvm`` for rendered frames, as a Cambridge folder ships it for its photographs."""
    points, seen = scene_structure(quads, poses, size, hfov_deg, seed)
    focal = intrinsics(*size, hfov_deg)[0, 0]
    return write_nvm(Path(folder) / NVM_FILE, names, poses, focal, points, seen)

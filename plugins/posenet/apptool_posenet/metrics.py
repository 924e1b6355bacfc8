"""Relocalization metrics (numpy): position error in metres, orientation error in degrees.

The orientation error is the angle of the relative rotation, 2·acos|<q, q̂>|
for unit quaternions; the absolute value makes q and -q the same rotation.
Thresholds follow the relocalization literature: (0.25 m, 2°), (0.5 m, 5°),
(5 m, 10°).
"""

from __future__ import annotations

import numpy as np

THRESHOLDS = ((0.25, 2.0, "acc_0.25m_2deg"), (0.5, 5.0, "acc_0.5m_5deg"), (5.0, 10.0, "acc_5m_10deg"))


def position_errors(true_xyz: np.ndarray, pred_xyz: np.ndarray) -> np.ndarray:
    """Euclidean distance between true and predicted positions, per row."""
    return np.linalg.norm(np.asarray(true_xyz, np.float64) - np.asarray(pred_xyz, np.float64), axis=-1)


def rotation_errors_deg(true_q: np.ndarray, pred_q: np.ndarray) -> np.ndarray:
    """Angle in degrees between the rotations of two quaternion arrays (normalised here; sign-agnostic)."""
    a = np.asarray(true_q, np.float64)
    b = np.asarray(pred_q, np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    dot = np.clip(np.abs((a * b).sum(axis=-1)), 0.0, 1.0)
    return np.degrees(2.0 * np.arccos(dot))


def pose_metrics(true_poses: np.ndarray, pred_poses: np.ndarray) -> dict[str, float]:
    """Median/mean errors and threshold accuracies for pose rows (x, y, z, qw, qx, qy, qz)."""
    pos = position_errors(true_poses[:, :3], pred_poses[:, :3])
    rot = rotation_errors_deg(true_poses[:, 3:], pred_poses[:, 3:])
    metrics = {
        "median_pos_err_m": float(np.median(pos)),
        "median_rot_err_deg": float(np.median(rot)),
        "mean_pos_err_m": float(pos.mean()),
        "mean_rot_err_deg": float(rot.mean()),
    }
    for metres, degrees, key in THRESHOLDS:
        metrics[key] = float(((pos <= metres) & (rot <= degrees)).mean())
    return metrics


def nearest_neighbours(queries: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Index of the most similar database row for each query, by cosine similarity."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    d = database / np.maximum(np.linalg.norm(database, axis=1, keepdims=True), 1e-12)
    return np.argmax(q @ d.T, axis=1)

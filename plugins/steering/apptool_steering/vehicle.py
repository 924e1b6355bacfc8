"""The car: kinematic bicycle model and the expert that labels every frame.

Steering follows the Udacity convention: a command in [-1, 1], positive turns
right, scaled by MAX_STEER_DEG to the front-wheel angle.  The expert is pure
pursuit towards the centreline point LOOKAHEAD metres ahead of the rear axle:
on a centred car it returns the road's curvature, away from the centre it
returns the recovery command that brings the car back, which is exactly the
label PilotNet's shifted and rotated views were given.
"""

from __future__ import annotations

import math

import numpy as np

from apptool_steering.road import DS, Track

WHEELBASE = 2.7
MAX_STEER_DEG = 25.0
LOOKAHEAD = 8.0
#: The camera sits this far ahead of the rear axle (the bicycle model's reference point).
CAMERA_FORWARD = 1.5


def command_to_curvature(command: float) -> float:
    """Path curvature (1/m, positive left) of a steering command."""
    return -math.tan(math.radians(MAX_STEER_DEG) * float(np.clip(command, -1, 1))) / WHEELBASE


def curvature_to_command(kappa: float) -> float:
    """The steering command whose path has curvature ``kappa`` (clipped to [-1, 1])."""
    return float(np.clip(-math.degrees(math.atan(WHEELBASE * kappa)) / MAX_STEER_DEG, -1.0, 1.0))


def expert_command(track: Track, pose: tuple[float, float, float], hint: int) -> float:
    """Pure-pursuit steering that returns a car at rear-axle ``pose`` to the centreline."""
    fwd, left, _, _ = track.local(*pose, hint, behind=0.0, ahead=3 * LOOKAHEAD + 5)
    dist = np.hypot(fwd, left)
    beyond = np.flatnonzero((dist >= LOOKAHEAD) & (fwd > 0))
    k = beyond[0] if len(beyond) else len(fwd) - 1
    alpha = math.atan2(left[k], fwd[k])
    return curvature_to_command(2.0 * math.sin(alpha) / dist[k])  # the arc through the target point


def camera_pose(pose: tuple[float, float, float], lateral: float = 0.0) -> tuple[float, float, float]:
    """World pose of a camera CAMERA_FORWARD ahead of the rear axle and ``lateral`` m to its left."""
    x, y, h = pose
    return (
        x + CAMERA_FORWARD * math.cos(h) - lateral * math.sin(h),
        y + CAMERA_FORWARD * math.sin(h) + lateral * math.cos(h),
        h,
    )


def camera_hint(hint: int) -> int:
    """Track index near the camera, given the index near the rear axle."""
    return hint + int(CAMERA_FORWARD / DS)


def bicycle_step(pose: tuple[float, float, float], wheel_angle: float, speed: float, dt: float) -> tuple[float, float, float]:
    """One step of the kinematic bicycle model about the rear axle; ``wheel_angle`` in radians, positive left."""
    x, y, h = pose
    dh = speed / WHEELBASE * math.tan(wheel_angle) * dt
    mid = h + dh / 2
    return x + speed * math.cos(mid) * dt, y + speed * math.sin(mid) * dt, h + dh


def recovery_command(command: float, shift_m: float, yaw_rad: float) -> float:
    """The expert's command for a car moved ``shift_m`` to the left and turned ``yaw_rad`` to the left.

    The original command fixes the pure-pursuit target on the path; seen from
    the moved car, that same target gives the recovery command.
    """
    alpha = math.asin(float(np.clip(command_to_curvature(command) * LOOKAHEAD / 2, -1, 1)))
    qx, qy = LOOKAHEAD * math.cos(alpha), LOOKAHEAD * math.sin(alpha) - shift_m
    fx = qx * math.cos(yaw_rad) + qy * math.sin(yaw_rad)
    fy = -qx * math.sin(yaw_rad) + qy * math.cos(yaw_rad)
    return curvature_to_command(2.0 * math.sin(math.atan2(fy, fx)) / math.hypot(fx, fy))

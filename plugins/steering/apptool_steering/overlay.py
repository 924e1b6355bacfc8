"""Drawing a steering command on a frame: the path it would drive, a steering wheel, and the figure."""

from __future__ import annotations

import math

import cv2
import numpy as np

from apptool_steering import road, vehicle

HALF_CAR = 0.9  # metres: the drawn corridor is one car wide


def path_points(command: float, camera: road.Camera, reach: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel polylines of the left and right edges of the car's path under ``command``."""
    kappa = vehicle.command_to_curvature(command)
    arc = np.linspace(vehicle.CAMERA_FORWARD + 1.0, reach, 40)
    if abs(kappa) < 1e-6:
        x, y, heading = arc, np.zeros_like(arc), np.zeros_like(arc)
    else:
        x, y, heading = np.sin(kappa * arc) / kappa, (1 - np.cos(kappa * arc)) / kappa, kappa * arc
    edges = []
    for side in (HALF_CAR, -HALF_CAR):
        fwd = x - side * np.sin(heading) - vehicle.CAMERA_FORWARD
        left = y + side * np.cos(heading)
        col, row, depth = camera.project(fwd, left, np.full_like(fwd, -camera.mount_height))
        keep = depth > 0.5
        edges.append(np.stack([col[keep], row[keep]], axis=1))
    return edges[0], edges[1]


def draw_steering(image: np.ndarray, command: float, label: str | None = None) -> np.ndarray:
    """A copy of the RGB ``image`` with the predicted path, a turned steering wheel and the command."""
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    camera = road.Camera(height_px=h, width_px=w, hood=False)
    left, right = path_points(command, camera)
    if len(left) > 1 and len(right) > 1:
        polygon = np.concatenate([left, right[::-1]]).round().astype(np.int32)
        tint = out.copy()
        cv2.fillPoly(tint, [polygon], (40, 220, 90), cv2.LINE_AA)
        out = cv2.addWeighted(tint, 0.35, out, 0.65, 0)
        for edge in (left, right):
            cv2.polylines(out, [edge.round().astype(np.int32)], False, (40, 255, 90), max(1, w // 200), cv2.LINE_AA)

    radius = max(10, min(h, w) // 8)
    centre = (w - radius - max(4, w // 40), radius + max(4, h // 30))
    thick = max(2, radius // 6)
    cv2.circle(out, centre, radius, (255, 255, 255), thick, cv2.LINE_AA)
    turn = float(np.clip(command, -1, 1)) * math.pi  # full lock is half a turn; clockwise for right
    for spoke in (0.0, math.pi, math.pi / 2):
        a = spoke + turn
        end = (int(centre[0] + radius * math.cos(a)), int(centre[1] + radius * math.sin(a)))
        cv2.line(out, centre, end, (255, 255, 255), thick, cv2.LINE_AA)
    top = -math.pi / 2 + turn  # the rim's centre mark
    cv2.circle(
        out,
        (int(centre[0] + radius * math.cos(top)), int(centre[1] + radius * math.sin(top))),
        thick + 1,
        (255, 80, 80),
        -1,
        cv2.LINE_AA,
    )

    degrees = command * vehicle.MAX_STEER_DEG
    text = (
        label
        or f"steer {command:+.3f} ({abs(degrees):.1f} deg {'right' if degrees > 0 else 'left' if degrees < 0 else 'straight'})"
    )
    scale = max(0.35, w / 900)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (2, 2), (8 + tw, 8 + th + base), (0, 0, 0), -1)
    cv2.putText(out, text, (5, 5 + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def drive_frame(image: np.ndarray, state: dict, scale: int = 2) -> np.ndarray:
    """One video frame of a closed-loop drive: the camera view, the command, and the drive's state."""
    big = cv2.resize(image, (image.shape[1] * scale, image.shape[0] * scale), interpolation=cv2.INTER_LINEAR)
    label = f"t {state['time']:5.1f} s  steer {state['command']:+.2f}  off centre {state['offset']:+.2f} m  interventions {state['interventions']}"
    out = draw_steering(big, state["command"], label)
    h, w = out.shape[:2]
    bar_y, mid = h - 12, w // 2
    cv2.line(out, (mid - 100, bar_y), (mid + 100, bar_y), (255, 255, 255), 1)
    cv2.line(out, (mid, bar_y - 5), (mid, bar_y + 5), (255, 255, 255), 1)
    x = int(mid - 100 * float(np.clip(state["offset"], -1, 1)))  # left offset drawn to the left
    cv2.circle(out, (x, bar_y), 5, (255, 60, 60) if abs(state["offset"]) > 0.5 else (60, 255, 60), -1)
    return out

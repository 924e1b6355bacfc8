"""Evaluation figures drawn with OpenCV (no matplotlib on the deployment path)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from apptool_steering.sim import Drive

WHITE, GREY, BLUE, RED = (255, 255, 255), (200, 200, 200), (200, 90, 30), (40, 40, 220)  # BGR


def _canvas(w: int, h: int, title: str) -> np.ndarray:
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(img, title, (10, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def scatter(predicted: np.ndarray, target: np.ndarray, size: int = 420) -> np.ndarray:
    """Predicted against recorded steering on the test split, with the identity line."""
    img = _canvas(size, size, "test split: predicted vs recorded steering")
    lim = float(max(np.abs(target).max(initial=0.1), np.abs(predicted).max(initial=0.1))) * 1.05
    pad = 40

    def to_px(v):
        return pad + (np.asarray(v) + lim) / (2 * lim) * (size - 2 * pad)

    cv2.rectangle(img, (pad, pad), (size - pad, size - pad), GREY, 1)
    cv2.line(img, (pad, size - pad), (size - pad, pad), GREY, 1, cv2.LINE_AA)
    for x, y in zip(to_px(target), to_px(predicted)):
        cv2.circle(img, (int(x), int(size - y)), 2, BLUE, -1, cv2.LINE_AA)
    cv2.putText(
        img,
        f"recorded (x) vs predicted (y), axes +-{lim:.2f}",
        (pad, size - 12),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return img


def offsets(drive: Drive, width: int = 900, height: int = 260) -> np.ndarray:
    """Distance from the centre over the closed-loop drive; red ticks mark interventions."""
    img = _canvas(
        width, height, f"closed loop: offset from centre (m), {drive.interventions} interventions, autonomy {drive.autonomy:.1f}%"
    )
    pad, mid = 30, height // 2 + 10
    scale = (height // 2 - 30) / 1.5
    for level in (-1.0, 1.0):
        y = int(mid - level * scale)
        cv2.line(img, (pad, y), (width - pad, y), RED, 1)
    cv2.line(img, (pad, mid), (width - pad, mid), GREY, 1)
    n = max(len(drive.offsets), 2)
    xs = pad + np.arange(len(drive.offsets)) / (n - 1) * (width - 2 * pad)
    ys = mid - np.clip(drive.offsets, -1.5, 1.5) * scale
    cv2.polylines(img, [np.stack([xs, ys], 1).round().astype(np.int32)], False, BLUE, 1, cv2.LINE_AA)
    for step in drive.intervened_at:
        x = int(pad + step / (n - 1) * (width - 2 * pad))
        cv2.line(img, (x, mid - int(1.5 * scale)), (x, mid + int(1.5 * scale)), RED, 2)
    return img


def write_plots(out_dir: Path, predicted: np.ndarray, target: np.ndarray, drive: Drive) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "test_scatter.png", out_dir / "drive_offsets.png"]
    cv2.imwrite(str(written[0]), scatter(predicted, target))
    cv2.imwrite(str(written[1]), offsets(drive))
    return written

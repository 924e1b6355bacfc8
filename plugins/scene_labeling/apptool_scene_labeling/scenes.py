"""A procedural outdoor-scene generator with exact per-pixel labels (numpy + OpenCV).

Each scene is painted back to front — sky and clouds, mountain ridges, the
ground (grass, water that mirrors what stands above it, a road in
perspective), buildings with windows, trees, foreground objects — and every
shape is written into the label mask by the same polygon that paints it, so
the mask is exact.  Palettes, textures, layout and lighting vary so that
colour alone does not give the class away: context and texture matter, as in
the Stanford Background photos.
"""

from __future__ import annotations

import cv2
import numpy as np

#: The eight Stanford Background classes, in that data set's label order.
CLASSES = ("sky", "tree", "road", "grass", "water", "building", "mountain", "foreground")
SKY, TREE, ROAD, GRASS, WATER, BUILDING, MOUNTAIN, FOREGROUND = range(8)
IGNORE = 255
#: Overlay colours (RGB), one per class.
PALETTE = np.array(
    [
        [70, 130, 230],
        [30, 120, 40],
        [110, 110, 110],
        [140, 200, 60],
        [20, 60, 150],
        [200, 80, 60],
        [140, 100, 160],
        [240, 200, 20],
    ],
    np.uint8,
)


def fbm(rng: np.random.Generator, height: int, width: int, octaves: int = 4, base: int = 3) -> np.ndarray:
    """Fractal value noise in [0, 1]: a few bilinear-upsampled random grids, finer ones weaker."""
    total = np.zeros((height, width), np.float32)
    weight = 1.0
    for octave in range(octaves):
        cells = base * 2**octave
        grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
        total += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)
        weight *= 0.5
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def _jitter(rng: np.random.Generator, color, amount: float = 0.08) -> np.ndarray:
    return np.clip(np.asarray(color, np.float32) + rng.normal(0, amount, 3), 0, 1).astype(np.float32)


def _textured(rng, height, width, color, amount, octaves=4, base=3) -> np.ndarray:
    """An HxWx3 colour field ``color`` modulated by noise of relative strength ``amount``."""
    noise = fbm(rng, height, width, octaves, base)[..., None]
    return np.clip(color * (1 + amount * (noise - 0.5) * 2), 0, 1)


class Canvas:
    """An image and its label mask, painted together."""

    def __init__(self, height: int, width: int):
        self.h, self.w = height, width
        self.image = np.zeros((height, width, 3), np.float32)
        self.mask = np.full((height, width), SKY, np.uint8)

    def region(self, polygons) -> np.ndarray:
        area = np.zeros((self.h, self.w), np.uint8)
        cv2.fillPoly(area, [np.round(np.asarray(p)).astype(np.int32) for p in polygons], 1)
        return area.astype(bool)

    def paint(self, area: np.ndarray, pixels: np.ndarray, label: int) -> None:
        """Paint ``pixels`` (HxWx3 or a colour) where ``area`` is set and label those pixels ``label``."""
        self.image[area] = pixels[area] if pixels.ndim == 3 else pixels
        self.mask[area] = label


def _sky(rng, c: Canvas, horizon: int) -> np.ndarray:
    kind = rng.choice(["clear", "overcast", "sunset", "hazy"], p=[0.45, 0.2, 0.2, 0.15])
    top, bottom = {
        "clear": ((0.15, 0.35, 0.8), (0.65, 0.8, 0.95)),
        "overcast": ((0.55, 0.58, 0.62), (0.78, 0.79, 0.8)),
        "sunset": ((0.25, 0.25, 0.55), (0.98, 0.6, 0.3)),
        "hazy": ((0.6, 0.7, 0.85), (0.9, 0.9, 0.88)),
    }[str(kind)]
    t = np.clip(np.arange(c.h, dtype=np.float32) / max(horizon, 1), 0, 1)[:, None, None]
    sky = (1 - t) * _jitter(rng, top) + t * _jitter(rng, bottom)
    sky = np.broadcast_to(sky, (c.h, c.w, 3)).copy()
    cover = rng.uniform(0.0, 0.7)
    if cover > 0.1:
        clouds = fbm(rng, c.h, c.w, 5, int(rng.integers(2, 5)))
        alpha = np.clip((clouds - (1 - cover)) * 3, 0, 1)[..., None] * rng.uniform(0.6, 1.0)
        shade = _jitter(rng, (0.95, 0.95, 0.97) if kind != "overcast" else (0.6, 0.6, 0.63), 0.05)
        sky = sky * (1 - alpha) + shade * alpha
    c.paint(np.ones((c.h, c.w), bool), sky, SKY)
    return sky


def _mountains(rng, c: Canvas, horizon: int) -> None:
    for layer in range(int(rng.integers(1, 3))):
        xs = np.linspace(0, c.w, 33)
        profile = np.cumsum(rng.normal(0, 1, xs.size))
        profile = (profile - profile.min()) / max(np.ptp(profile), 1e-6)
        height = rng.uniform(0.12, 0.35) * c.h * (1.0 - 0.3 * layer)
        ridge = horizon - 2 - profile * height - rng.uniform(0, 0.05) * c.h
        polygon = np.concatenate([np.stack([xs, ridge], 1), [[c.w, horizon + 2], [0, horizon + 2]]])
        base = _jitter(rng, [(0.45, 0.5, 0.6), (0.45, 0.38, 0.3), (0.35, 0.42, 0.35), (0.55, 0.52, 0.55)][int(rng.integers(4))])
        haze = 0.35 if layer == 0 else 0.0
        color = base * (1 - haze) + np.array([0.75, 0.8, 0.9], np.float32) * haze
        pixels = _textured(rng, c.h, c.w, color, 0.35, 5, 4)
        if rng.random() < 0.4:  # snow on the peaks
            snowline = ridge.min() + 0.3 * (horizon - ridge.min())
            rows = np.arange(c.h)[:, None, None] < snowline
            pixels = np.where(rows, np.clip(pixels + 0.4, 0, 1), pixels)
        c.paint(c.region([polygon]), pixels, MOUNTAIN)


def _grass(rng, c: Canvas, horizon: int) -> None:
    color = _jitter(rng, [(0.3, 0.55, 0.2), (0.45, 0.6, 0.25), (0.55, 0.5, 0.25), (0.25, 0.45, 0.2)][int(rng.integers(4))])
    pixels = _textured(rng, c.h, c.w, color, 0.4, 5, 6)
    blades = rng.random((c.h, c.w), dtype=np.float32)[..., None]
    pixels = np.clip(pixels * (0.85 + 0.3 * blades), 0, 1)
    area = np.zeros((c.h, c.w), bool)
    area[horizon:] = True
    c.paint(area, pixels, GRASS)


def _water(rng, c: Canvas, horizon: int) -> None:
    depth = int(rng.uniform(0.25, 0.9) * (c.h - horizon))
    side = rng.choice(["band", "left", "right"])
    top = horizon
    bottom = horizon + depth
    if side == "band":
        edge = bottom + rng.normal(0, 0.02 * c.h, 9)
        polygon = np.concatenate([[[0, top], [c.w, top]], np.stack([np.linspace(c.w, 0, 9), edge], 1)])
    else:
        reach = rng.uniform(0.4, 0.8) * c.w
        x0, x1 = (0, reach) if side == "left" else (c.w, c.w - reach)
        polygon = np.array([[x0, top], [x1, top], [x0 + (x1 - x0) * 0.3, bottom], [x0, bottom]], np.float32)
    # the reflection: what stands above the horizon, mirrored and darkened, with ripples
    rows = np.clip(2 * horizon - np.arange(c.h), 0, c.h - 1)
    ripple = np.sin(np.arange(c.h)[:, None] * rng.uniform(0.8, 1.6) + fbm(rng, c.h, c.w, 3, 4) * 6) * rng.uniform(1, 3)
    cols = np.clip(np.arange(c.w)[None, :] + ripple, 0, c.w - 1).astype(np.int32)
    mirrored = c.image[rows[:, None], cols]
    tint = _jitter(rng, [(0.1, 0.3, 0.5), (0.15, 0.35, 0.35), (0.2, 0.25, 0.35)][int(rng.integers(3))])
    mix = rng.uniform(0.3, 0.7)
    pixels = np.clip(mirrored * mix + tint * (1 - mix), 0, 1) * rng.uniform(0.7, 0.95)
    sparkle = (rng.random((c.h, c.w)) < 0.01)[..., None] * 0.3
    c.paint(c.region([polygon]), np.clip(pixels + sparkle, 0, 1), WATER)


def _road(rng, c: Canvas, horizon: int) -> None:
    vanish = rng.uniform(0.25, 0.75) * c.w
    half = rng.uniform(0.2, 0.5) * c.w
    centre = vanish + rng.uniform(-0.3, 0.3) * c.w
    top_half = rng.uniform(0.005, 0.03) * c.w
    polygon = np.array(
        [[vanish - top_half, horizon], [vanish + top_half, horizon], [centre + half, c.h], [centre - half, c.h]], np.float32
    )
    color = _jitter(
        rng, [(0.35, 0.35, 0.37), (0.5, 0.48, 0.45), (0.25, 0.25, 0.27), (0.55, 0.45, 0.35)][int(rng.integers(4))], 0.04
    )
    pixels = _textured(rng, c.h, c.w, color, 0.25, 4, 8)
    area = c.region([polygon])
    c.paint(area, pixels, ROAD)
    if rng.random() < 0.7:  # dashed centre line, part of the road
        line = np.zeros((c.h, c.w), np.uint8)
        for t0 in np.arange(0.0, 1.0, 0.12):
            t1 = t0 + 0.06
            y0, y1 = horizon + (c.h - horizon) * t0**1.5, horizon + (c.h - horizon) * t1**1.5
            x0, x1 = vanish + (centre - vanish) * t0**1.5, vanish + (centre - vanish) * t1**1.5
            cv2.line(line, (int(x0), int(y0)), (int(x1), int(y1)), 1, max(1, int(1 + 2 * t1)))
        marks = line.astype(bool) & area
        c.image[marks] = _jitter(rng, (0.95, 0.9, 0.6), 0.05)


def _buildings(rng, c: Canvas, horizon: int) -> None:
    x = rng.uniform(-0.1, 0.5) * c.w
    end = x + rng.uniform(0.3, 1.0) * c.w
    while x < end:
        width = rng.uniform(0.08, 0.25) * c.w
        height = rng.uniform(0.12, 0.5) * c.h
        base = horizon + rng.uniform(0, 0.04) * c.h
        body = [[x, base], [x + width, base], [x + width, base - height], [x, base - height]]
        polygons = [body]
        if rng.random() < 0.35:  # a pitched roof
            polygons.append(
                [[x - 1, base - height], [x + width + 1, base - height], [x + width / 2, base - height - 0.4 * width]]
            )
        color = _jitter(
            rng, [(0.6, 0.3, 0.25), (0.6, 0.6, 0.62), (0.8, 0.75, 0.6), (0.9, 0.9, 0.88), (0.35, 0.35, 0.4)][int(rng.integers(5))]
        )
        area = c.region(polygons)
        c.paint(area, _textured(rng, c.h, c.w, color, 0.2, 3, 8), BUILDING)
        window = _jitter(rng, [(0.15, 0.2, 0.3), (0.9, 0.85, 0.5), (0.5, 0.6, 0.7)][int(rng.integers(3))], 0.05)
        rows, cols = int(rng.integers(2, 7)), int(rng.integers(2, 5))
        win = np.zeros((c.h, c.w), np.uint8)
        for r in range(rows):
            for k in range(cols):
                wx = x + width * (k + 0.3) / cols
                wy = base - height + height * (r + 0.25) / (rows + 0.3)
                cv2.rectangle(
                    win, (int(wx), int(wy)), (int(wx + width * 0.4 / cols), int(wy + height * 0.4 / (rows + 0.3))), 1, -1
                )
        c.image[win.astype(bool) & area] = window  # windows are part of the building
        x += width + rng.uniform(-0.02, 0.08) * c.w


def _tree(rng, c: Canvas, x: float, ground: float, scale: float) -> None:
    trunk_h, trunk_w = 0.35 * scale, max(0.06 * scale, 1.5)
    leaves = _jitter(
        rng,
        [(0.15, 0.4, 0.12), (0.25, 0.5, 0.15), (0.1, 0.3, 0.15), (0.7, 0.45, 0.1), (0.6, 0.2, 0.1)][
            int(rng.choice(5, p=[0.3, 0.25, 0.25, 0.1, 0.1]))
        ],
    )
    trunk = [[x - trunk_w, ground], [x + trunk_w, ground], [x + trunk_w, ground - trunk_h], [x - trunk_w, ground - trunk_h]]
    c.paint(c.region([trunk]), _jitter(rng, (0.35, 0.22, 0.12)), TREE)
    crown = np.zeros((c.h, c.w), np.uint8)
    if rng.random() < 0.35:  # a conifer: stacked triangles
        for k in range(3):
            y = ground - trunk_h * 0.6 - k * 0.3 * scale
            half = (0.35 - 0.08 * k) * scale
            cv2.fillPoly(crown, [np.int32([[x - half, y], [x + half, y], [x, y - 0.45 * scale]])], 1)
    else:
        for _ in range(int(rng.integers(3, 7))):
            cx = x + rng.normal(0, 0.15) * scale
            cy = ground - trunk_h - rng.uniform(0.1, 0.4) * scale
            r = rng.uniform(0.15, 0.3) * scale
            cv2.ellipse(crown, (int(cx), int(cy)), (max(int(r), 1), max(int(r * rng.uniform(0.7, 1.1)), 1)), 0, 0, 360, 1, -1)
    c.paint(crown.astype(bool), _textured(rng, c.h, c.w, leaves, 0.6, 4, 10), TREE)


def _treeline(rng, c: Canvas, horizon: int) -> None:
    xs = np.linspace(0, c.w, 40)
    bumps = horizon - rng.uniform(0.03, 0.1) * c.h * (0.5 + fbm(rng, 1, 40, 3, 4)[0])
    start, stop = sorted(rng.uniform(0, c.w, 2))
    keep = (xs >= start) & (xs <= stop)
    if keep.sum() < 2:
        return
    polygon = np.concatenate([np.stack([xs[keep], bumps[keep]], 1), [[xs[keep][-1], horizon + 1], [xs[keep][0], horizon + 1]]])
    leaves = _jitter(rng, (0.12, 0.3, 0.12))
    c.paint(c.region([polygon]), _textured(rng, c.h, c.w, leaves, 0.6, 4, 12), TREE)


def _car(rng, c: Canvas, x: float, ground: float, scale: float) -> None:
    color = _jitter(rng, rng.random(3) * 0.9, 0.0)
    length, height = 1.0 * scale, 0.3 * scale
    body = [[x, ground - 0.08 * scale], [x + length, ground - 0.08 * scale], [x + length, ground - height], [x, ground - height]]
    cabin = [
        [x + 0.2 * length, ground - height],
        [x + 0.8 * length, ground - height],
        [x + 0.68 * length, ground - height - 0.22 * scale],
        [x + 0.3 * length, ground - height - 0.22 * scale],
    ]
    c.paint(c.region([body, cabin]), _textured(rng, c.h, c.w, color, 0.15, 2, 4), FOREGROUND)
    wheels = np.zeros((c.h, c.w), np.uint8)
    for wx in (x + 0.2 * length, x + 0.8 * length):
        cv2.circle(wheels, (int(wx), int(ground - 0.09 * scale)), max(int(0.1 * scale), 1), 1, -1)
    c.paint(wheels.astype(bool), np.full(3, 0.08, np.float32), FOREGROUND)
    glass = c.region([[[p[0] * 0.9 + (x + length / 2) * 0.1, p[1] * 0.9 + (ground - height - 0.1 * scale) * 0.1] for p in cabin]])
    c.image[glass] = _jitter(rng, (0.5, 0.6, 0.7), 0.05)


def _person(rng, c: Canvas, x: float, ground: float, scale: float) -> None:
    shirt, trousers = _jitter(rng, rng.random(3), 0.0), _jitter(rng, (0.2, 0.2, 0.3))
    w = 0.12 * scale
    legs = [[x - w, ground], [x + w, ground], [x + w, ground - 0.45 * scale], [x - w, ground - 0.45 * scale]]
    torso = [
        [x - 1.3 * w, ground - 0.45 * scale],
        [x + 1.3 * w, ground - 0.45 * scale],
        [x + 1.3 * w, ground - 0.8 * scale],
        [x - 1.3 * w, ground - 0.8 * scale],
    ]
    c.paint(c.region([legs]), trousers, FOREGROUND)
    c.paint(c.region([torso]), shirt, FOREGROUND)
    head = np.zeros((c.h, c.w), np.uint8)
    cv2.circle(head, (int(x), int(ground - 0.9 * scale)), max(int(0.1 * scale), 1), 1, -1)
    c.paint(head.astype(bool), _jitter(rng, (0.8, 0.6, 0.45), 0.1), FOREGROUND)


def _sign(rng, c: Canvas, x: float, ground: float, scale: float) -> None:
    pole = [
        [x - 0.03 * scale, ground],
        [x + 0.03 * scale, ground],
        [x + 0.03 * scale, ground - scale],
        [x - 0.03 * scale, ground - scale],
    ]
    board = [
        [x - 0.25 * scale, ground - scale],
        [x + 0.25 * scale, ground - scale],
        [x + 0.25 * scale, ground - 1.3 * scale],
        [x - 0.25 * scale, ground - 1.3 * scale],
    ]
    c.paint(c.region([pole]), np.full(3, 0.5, np.float32), FOREGROUND)
    c.paint(
        c.region([board]), _jitter(rng, [(0.8, 0.1, 0.1), (0.1, 0.4, 0.8), (0.9, 0.8, 0.1)][int(rng.integers(3))]), FOREGROUND
    )


def _lighting(rng, image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    gain = rng.uniform(0.65, 1.25)
    tint = 1 + rng.normal(0, 0.06, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * np.linspace(-1, 1, w)[None, :] + np.sin(angle) * np.linspace(-1, 1, h)[:, None]
    shade = 1 + rng.uniform(0, 0.25) * ramp[..., None].astype(np.float32)
    out = np.clip(image * gain * tint * shade, 0, 1) ** rng.uniform(0.8, 1.25)
    out = out + rng.normal(0, rng.uniform(0.005, 0.03), out.shape).astype(np.float32)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), 0)
    return np.clip(out, 0, 1)


def generate_scene(rng: np.random.Generator, height: int = 128, width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """One scene: an HxWx3 uint8 RGB image and its HxW uint8 label mask (indices into CLASSES)."""
    c = Canvas(height, width)
    horizon = int(rng.uniform(0.3, 0.62) * height)
    _sky(rng, c, horizon)
    if rng.random() < 0.6:
        _mountains(rng, c, horizon)
    if rng.random() < 0.4:
        _treeline(rng, c, horizon)
    if rng.random() < 0.45:
        _buildings(rng, c, horizon)
    _grass(rng, c, horizon)
    if rng.random() < 0.5:
        _water(rng, c, horizon)
    if rng.random() < 0.6:
        _road(rng, c, horizon)
    things = []  # trees and foreground objects, painted far to near so nearer ones occlude
    for _ in range(int(rng.choice(6, p=[0.2, 0.25, 0.2, 0.15, 0.1, 0.1]))):
        things.append(("tree", rng.uniform(horizon + 2, height + 0.15 * height)))
    for _ in range(int(rng.choice(5, p=[0.25, 0.3, 0.25, 0.12, 0.08]))):
        things.append(
            (str(rng.choice(["car", "person", "sign"], p=[0.5, 0.35, 0.15])), rng.uniform(horizon + 4, height + 0.1 * height))
        )
    for kind, ground in sorted(things, key=lambda t: t[1]):
        depth = (ground - horizon) / max(height - horizon, 1)  # 0 at the horizon, 1 at the bottom edge
        x = rng.uniform(-0.1, 1.0) * width
        if kind == "tree":
            _tree(rng, c, x, ground, (0.12 + 0.45 * depth) * height * rng.uniform(0.7, 1.2))
        elif kind == "car":
            _car(rng, c, x, ground, (0.1 + 0.4 * depth) * height)
        elif kind == "person":
            _person(rng, c, x, ground, (0.1 + 0.45 * depth) * height)
        else:
            _sign(rng, c, x, ground, (0.08 + 0.3 * depth) * height)
    image = (_lighting(rng, c.image) * 255 + 0.5).astype(np.uint8)
    return image, c.mask


def scene(seed: int, split: int, index: int, height: int = 128, width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Scene ``index`` of stream (``seed``, ``split``): the same pair on every machine and every call.

    Train and test use different ``split`` numbers, so their scenes never coincide.
    """
    return generate_scene(np.random.default_rng([int(seed), int(split), int(index)]), height, width)

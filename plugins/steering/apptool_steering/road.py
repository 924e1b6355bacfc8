"""Procedural roads and a pinhole camera that renders them (numpy/OpenCV only).

A track is a centreline integrated from a curvature profile (straights, arcs
and clothoid transitions) plus a scene: road width, asphalt and verge colours,
lane markings, kerbs, shadows, road patches, and roadside objects (trees,
poles, signs, rocks, cones, parked cars) that a model must learn to ignore.

Rendering is inverse perspective mapping: every image row below the horizon
sees the flat ground at one forward distance, so the centreline is
interpolated once per row and each pixel's road coordinates (arc length ``s``,
signed lateral offset ``u``, left positive) follow from its lateral position.
Everything the image shows is a function of (s, u), so a frame is the same
whether it is rendered for a training sample or for the closed-loop drive.
"""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

#: Track sampling step in metres.
DS = 0.25
#: How far ahead the renderer draws the road, in metres.
VIEW_AHEAD = 90.0
TILE = 256


@dataclass(frozen=True)
class Camera:
    """A forward camera on the car; the default frame is 160x320 like the Udacity simulator's."""

    height_px: int = 160
    width_px: int = 320
    hfov_deg: float = 60.0
    mount_height: float = 1.4
    pitch_deg: float = 5.0
    hood: bool = True

    @property
    def focal(self) -> float:
        return self.width_px / (2.0 * math.tan(math.radians(self.hfov_deg) / 2.0))

    @property
    def horizon_row(self) -> float:
        return self.height_px / 2.0 - self.focal * math.tan(math.radians(self.pitch_deg))

    def project(self, fwd: np.ndarray, left: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel column, row and depth of points in the camera's level frame (metres; up from the camera)."""
        p = math.radians(self.pitch_deg)
        depth = fwd * math.cos(p) - up * math.sin(p)
        down = -fwd * math.sin(p) - up * math.cos(p)
        depth_safe = np.maximum(depth, 1e-3)
        col = self.width_px / 2.0 - self.focal * left / depth_safe
        row = self.height_px / 2.0 + self.focal * down / depth_safe
        return col, row, depth


@dataclass
class Lighting:
    """Per-frame photometry: brightness, colour cast, a glare gradient and sensor noise."""

    brightness: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    glare: float = 0.0  # signed strength of a left-to-right brightness ramp
    noise: float = 0.0  # std of additive sensor noise, in grey levels

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Lighting":
        return cls(
            brightness=float(rng.uniform(0.55, 1.35)),
            tint=tuple(float(t) for t in rng.uniform(0.9, 1.1, 3)),
            glare=float(rng.uniform(-0.25, 0.25)),
            noise=float(rng.uniform(0.0, 5.0)),
        )


@dataclass
class Scene:
    """How one track looks."""

    road_width: float
    asphalt: np.ndarray
    verge: np.ndarray
    verge_alt: np.ndarray
    shoulder: float
    shoulder_color: np.ndarray
    edge_lines: bool
    centre_line: str  # "dashed" | "solid" | "none"
    edge_color: np.ndarray
    centre_color: np.ndarray
    kerbs: bool
    shadow_cover: float
    shadow_depth: float
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    hills: np.ndarray
    hill_height: float
    fog: float
    offset: tuple[float, float]  # where this scene reads the shared noise tiles

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Scene":
        grey = rng.uniform(70, 150)
        asphalt = np.clip(grey + rng.normal(0, 6, 3), 0, 255)
        kind = rng.choice(["green", "dry", "sand", "dark"], p=[0.45, 0.25, 0.15, 0.15])
        base = {"green": (70, 120, 50), "dry": (150, 135, 80), "sand": (190, 170, 130), "dark": (50, 70, 40)}[kind]
        verge = np.clip(np.array(base, float) + rng.normal(0, 15, 3), 0, 255)
        verge_alt = np.clip(verge * rng.uniform(0.7, 1.3) + rng.normal(0, 15, 3), 0, 255)
        yellow = rng.random() < 0.4
        sky = rng.choice(["clear", "overcast", "dusk"], p=[0.5, 0.3, 0.2])
        sky_top, sky_horizon = {
            "clear": ((70, 120, 200), (175, 205, 235)),
            "overcast": ((150, 155, 165), (200, 200, 205)),
            "dusk": ((60, 60, 120), (235, 160, 110)),
        }[sky]
        return cls(
            road_width=float(rng.uniform(5.0, 7.5)),
            asphalt=asphalt,
            verge=verge,
            verge_alt=verge_alt,
            shoulder=float(rng.choice([0.0, rng.uniform(0.3, 1.2)])),
            shoulder_color=np.clip(asphalt * rng.uniform(1.1, 1.5) + rng.normal(0, 10, 3), 0, 255),
            edge_lines=bool(rng.random() < 0.8),
            centre_line=str(rng.choice(["dashed", "solid", "none"], p=[0.5, 0.15, 0.35])),
            edge_color=np.array((235, 235, 230), float) * rng.uniform(0.75, 1.0),
            centre_color=np.array((230, 190, 40) if yellow else (235, 235, 230), float) * rng.uniform(0.75, 1.0),
            kerbs=bool(rng.random() < 0.25),
            shadow_cover=float(rng.choice([0.0, rng.uniform(0.1, 0.5)])),
            shadow_depth=float(rng.uniform(0.35, 0.7)),
            sky_top=np.array(sky_top, float) + rng.normal(0, 8, 3),
            sky_horizon=np.array(sky_horizon, float) + rng.normal(0, 8, 3),
            hills=np.clip(verge * rng.uniform(0.5, 0.9) + rng.normal(0, 10, 3), 0, 255),
            hill_height=float(rng.uniform(0.0, 0.12)),
            fog=float(rng.uniform(60.0, 250.0)),
            offset=(float(rng.uniform(0, TILE)), float(rng.uniform(0, TILE))),
        )


#: Roadside object kinds: (height m, width m, colour RGB).  Trees also cast shadows.
OBJECT_KINDS = {
    "tree": (6.0, 3.5, (40, 95, 35)),
    "pole": (7.0, 0.25, (150, 150, 150)),
    "sign": (2.5, 1.0, (200, 40, 40)),
    "rock": (0.8, 1.4, (120, 115, 105)),
    "cone": (0.7, 0.4, (245, 120, 20)),
    "car": (1.5, 4.2, (60, 80, 160)),
    "bush": (1.2, 2.0, (50, 110, 45)),
}


@dataclass
class Track:
    """A road: centreline samples every DS metres, its scenes and roadside clutter.

    A long track changes its look every ``scene_length`` metres (a new scene),
    so one drive crosses several landscapes.
    """

    xy: np.ndarray  # (N, 2) world positions
    heading: np.ndarray  # (N,) radians, counter-clockwise from +x
    curvature: np.ndarray  # (N,) 1/m, positive turns left
    scenes: list[Scene]
    scene_length: float
    objects: list[tuple[float, float, str, float, tuple[int, int, int]]] = field(default_factory=list)
    patches: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))  # s, u, half length, half width, gain

    @classmethod
    def from_curvature(cls, kappa: np.ndarray, scenes: list[Scene], scene_length: float = math.inf) -> "Track":
        """Integrate a curvature profile (1/m every DS metres) into a centreline starting at the origin along +x."""
        heading = np.concatenate([[0.0], np.cumsum(kappa[:-1] * DS)])
        mid = heading[:-1] + 0.5 * kappa[:-1] * DS
        steps = np.stack([np.cos(mid), np.sin(mid)], axis=1) * DS
        xy = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
        return cls(xy, heading, np.asarray(kappa, float), scenes, scene_length)

    def scene_at(self, s: float) -> Scene:
        return self.scenes[min(max(int(s // self.scene_length), 0), len(self.scenes) - 1)]

    def objects_between(self, lo: float, hi: float) -> list:
        """Roadside objects with arc length in (lo, hi); objects are sorted by arc length."""
        starts = [o[0] for o in self.objects]
        return self.objects[bisect.bisect_right(starts, lo) : bisect.bisect_left(starts, hi)]

    @property
    def length(self) -> float:
        return (len(self.xy) - 1) * DS

    def pose(self, s: float, offset: float = 0.0, yaw: float = 0.0) -> tuple[float, float, float]:
        """World (x, y, heading) of a point ``offset`` m left of the centreline at ``s``, turned by ``yaw``."""
        i = int(np.clip(round(s / DS), 0, len(self.xy) - 1))
        h = self.heading[i]
        x, y = self.xy[i]
        return float(x - offset * math.sin(h)), float(y + offset * math.cos(h)), float(h + yaw)

    def locate(self, x: float, y: float, hint: int) -> tuple[int, float]:
        """Nearest centreline index around ``hint`` and the signed lateral offset (left positive)."""
        lo, hi = max(hint - 80, 0), min(hint + 400, len(self.xy))
        d2 = ((self.xy[lo:hi] - (x, y)) ** 2).sum(axis=1)
        i = lo + int(np.argmin(d2))
        h = self.heading[i]
        dx, dy = x - self.xy[i, 0], y - self.xy[i, 1]
        return i, float(-dx * math.sin(h) + dy * math.cos(h))

    def local(self, x: float, y: float, heading: float, hint: int, behind: float = 5.0, ahead: float = VIEW_AHEAD):
        """Centreline ahead in the frame of a viewer at (x, y, heading): forward, left, relative heading, s."""
        lo = max(hint - int(behind / DS), 0)
        hi = min(hint + int(ahead / DS), len(self.xy))
        dx, dy = self.xy[lo:hi, 0] - x, self.xy[lo:hi, 1] - y
        c, s = math.cos(heading), math.sin(heading)
        fwd, left = dx * c + dy * s, -dx * s + dy * c
        rel = np.angle(np.exp(1j * (self.heading[lo:hi] - heading)))
        return fwd, left, rel, np.arange(lo, hi) * DS


def curvature_profile(rng: np.random.Generator, length: float, min_radius: float = 45.0) -> np.ndarray:
    """Straights and arcs joined by clothoid ramps, sampled every DS metres."""
    pieces: list[np.ndarray] = [np.zeros(int(30 / DS))]  # every track starts straight
    total = len(pieces[0])
    kappa = 0.0
    while total * DS < length:
        if rng.random() < 0.35:
            target, hold = 0.0, rng.uniform(15, 80)
        else:
            radius = rng.uniform(min_radius, 250.0)
            target = rng.choice([-1.0, 1.0]) / radius
            hold = radius * math.radians(rng.uniform(15, 110))
        ramp = rng.uniform(8, 25)
        pieces.append(np.linspace(kappa, target, int(ramp / DS), endpoint=False))
        pieces.append(np.full(int(hold / DS), target))
        kappa = target
        total += len(pieces[-1]) + len(pieces[-2])
    return np.concatenate(pieces)[: int(length / DS) + 1]


def make_track(seed, length: float = 600.0, min_radius: float = 45.0, scene_length: float = math.inf) -> Track:
    """A deterministic track for ``seed`` (an int or a sequence of ints), a new scene every ``scene_length`` m."""
    rng = np.random.default_rng(seed)
    kappa = curvature_profile(rng, length, min_radius)
    n_len = len(kappa) * DS
    scenes = [Scene.random(rng) for _ in range(max(1, math.ceil(n_len / scene_length)))]
    track = Track.from_curvature(kappa, scenes, scene_length)
    objects = []
    density = rng.uniform(0.01, 0.08)  # objects per metre of road
    for s in np.sort(rng.uniform(0, n_len, int(n_len * density))):
        kind = str(rng.choice(list(OBJECT_KINDS), p=[0.35, 0.15, 0.1, 0.12, 0.08, 0.08, 0.12]))
        height, width, colour = OBJECT_KINDS[kind]
        scale = rng.uniform(0.7, 1.3)
        near = 0.5 if kind == "cone" else 1.0 + width / 2
        scene = track.scene_at(s)
        u = (scene.road_width / 2 + scene.shoulder + near + rng.exponential(4.0)) * rng.choice([-1, 1])
        tint = tuple(int(np.clip(c * rng.uniform(0.7, 1.3), 0, 255)) for c in colour)
        objects.append((float(s), float(u), kind, float(height * scale), tint))
    n_patch = int(n_len * rng.uniform(0.0, 0.02))
    track.objects = objects
    track.patches = np.stack(
        [
            rng.uniform(0, n_len, n_patch),
            rng.uniform(-0.4, 0.4, n_patch) * 2.5,
            rng.uniform(0.5, 4.0, n_patch),
            rng.uniform(0.3, 1.5, n_patch),
            rng.choice([0.6, 0.75, 1.25, 1.4], n_patch),
        ],
        axis=1,
    )
    return track


@functools.lru_cache(maxsize=1)
def noise_tiles() -> tuple[np.ndarray, np.ndarray]:
    """Two periodic noise tiles in [0, 1] shared by every scene: fine grain and large blotches."""
    rng = np.random.default_rng(20160425)  # fixed: the tiles are part of the renderer, not the data
    freq = np.fft.fftfreq(TILE)
    radius = np.hypot(*np.meshgrid(freq, freq, indexing="ij"))
    tiles = []
    for cutoff in (0.25, 0.03):
        spectrum = np.fft.fft2(rng.standard_normal((TILE, TILE))) / (1.0 + (radius / cutoff) ** 2)
        tile = np.real(np.fft.ifft2(spectrum))
        tiles.append(((tile - tile.min()) / (tile.max() - tile.min())).astype(np.float32))
    return tiles[0], tiles[1]


def sample(tile: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a periodic tile at fractional coordinates (|r|, |c| < 32000: OpenCV's fixed point)."""
    return cv2.remap(
        tile, c.astype(np.float32, copy=False), r.astype(np.float32, copy=False), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP
    )


def _coverage(distance: np.ndarray, half_width: float, footprint: np.ndarray) -> np.ndarray:
    """Antialiased coverage of a band |d| < half_width by pixels of the given footprint (m)."""
    return np.clip((half_width - np.abs(distance)) / footprint + 0.5, 0.0, 1.0)


def render(
    track: Track,
    pose: tuple[float, float, float],
    hint: int,
    camera: Camera = Camera(),
    light: Lighting = Lighting(),
    rng: np.random.Generator | None = None,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """The RGB uint8 view of a camera at world ``pose`` (x, y, heading); ``hint`` is a nearby track index.

    ``rows`` (first, end) paints only those image rows and leaves the rest
    black: the network never sees the sky and the hood, so training and the
    simulator skip them.
    """
    scene = track.scene_at(hint * DS)
    h_px, w_px, f = camera.height_px, camera.width_px, camera.focal
    r0, r1 = rows if rows is not None else (0, h_px)
    p = math.radians(camera.pitch_deg)
    image = np.zeros((h_px, w_px, 3), np.float32)

    # sky and hills above the horizon
    horizon = camera.horizon_row
    first = min(max(int(math.floor(horizon)) + 1, r0), r1)
    if r0 < first:
        ys = np.arange(r0, first, dtype=np.float32)
        up = np.clip((horizon - ys) / max(horizon, 1.0), 0, 1)[:, None]
        image[r0:first] = (scene.sky_horizon * (1 - up) + scene.sky_top * up)[:, None, :]
        azimuth = pose[2] + np.arctan((w_px / 2.0 - np.arange(w_px)) / f)
        ridge = sum(np.sin(k * azimuth + 1.7 * k + scene.offset[0]) / k for k in (1, 2, 3, 5, 8))
        hill_top = horizon - (0.5 + 0.25 * ridge) * scene.hill_height * h_px
        hill = ys[:, None] >= hill_top[None, :]
        image[r0:first][hill] = (scene.hills * 0.6 + scene.sky_horizon * 0.4).astype(np.float32)

    # the ground, one forward distance per row
    if first < r1:
        b = (np.arange(first, r1, dtype=np.float32) + 0.5 - h_px / 2.0) / f
        t = camera.mount_height / (math.sin(p) + b * math.cos(p))
        fwd = t * (math.cos(p) - b * math.sin(p))
        a = (np.arange(w_px, dtype=np.float32) + 0.5 - w_px / 2.0) / f
        left = -t[:, None] * a[None, :]
        footprint = (t / f)[:, None]  # metres per pixel, across

        cf, cl, crel, cs = track.local(*pose, hint)
        ahead = np.flatnonzero(np.diff(cf) <= 0)
        stop = ahead[ahead > np.argmax(cf > 0)] if np.any(cf > 0) else ahead
        if len(stop):
            cf, cl, crel, cs = cf[: stop[0] + 1], cl[: stop[0] + 1], crel[: stop[0] + 1], cs[: stop[0] + 1]
        yc = np.interp(fwd, cf, cl).astype(np.float32)[:, None]
        phi = np.interp(fwd, cf, crel).astype(np.float32)[:, None]
        srow = np.interp(fwd, cf, cs).astype(np.float32)[:, None]
        dy = left - yc
        u = dy * np.cos(phi)
        u[fwd > cf[-1]] = 1e3
        image[first:r1] = _ground(track, scene, srow, dy * np.sin(phi), u, fwd, footprint, cs[0], cs[-1])

    _draw_objects(image, track, scene, pose, hint, camera)
    if camera.hood:
        cv2.ellipse(
            image, (w_px // 2, int(h_px * 1.12)), (int(w_px * 0.75), int(h_px * 0.2)), 0, 180, 360, (35, 35, 40), -1, cv2.LINE_AA
        )

    view = image[r0:r1]
    view *= light.brightness * np.asarray(light.tint, np.float32)
    view *= 1 + light.glare * np.linspace(-1, 1, w_px, dtype=np.float32)[None, :, None]
    if light.noise > 0 and rng is not None:
        view += rng.standard_normal(view.shape, dtype=np.float32) * np.float32(light.noise)
    out = np.zeros((h_px, w_px, 3), np.uint8)
    out[r0:r1] = np.clip(view, 0, 255)
    return out


def _ground(
    track: Track,
    scene: Scene,
    srow: np.ndarray,
    slocal: np.ndarray,
    u: np.ndarray,
    fwd: np.ndarray,
    footprint: np.ndarray,
    lo: float,
    hi: float,
) -> np.ndarray:
    """Colours of ground pixels at road coordinates (s = srow + slocal, u): coverage fields, composited per channel.

    Noise lookups wrap the per-row arc length first, so tile coordinates stay
    small however long the track.
    """
    fine, coarse = noise_tiles()
    so, uo = scene.offset
    s = srow + slocal

    def lookup(tile: np.ndarray, scale: float, s_off: float, u_off: float) -> np.ndarray:
        return sample(tile, np.mod(srow * scale + s_off, TILE) + slocal * scale, u * scale + u_off)

    grain = lookup(fine, 6.0, so, uo) - 0.5
    blotch = lookup(coarse, 0.6, uo, so)
    half = scene.road_width / 2
    abs_u = np.abs(u)
    alt = np.clip(blotch * 2.2 - 0.6, 0, 1)
    verge_tex = 1 + 0.35 * grain
    road = _coverage(u, half, footprint)
    road_tex = (1 + 0.15 * grain + 0.12 * (blotch - 0.5)) * road
    for ps, pu, pl, pw, gain in track.patches[(track.patches[:, 0] > lo - 5) & (track.patches[:, 0] < hi + 5)]:
        inside = (((s - ps) / pl) ** 2 + ((u - pu) / pw) ** 2 < 1) & (abs_u < half)
        road_tex[inside] *= gain
    layers = []  # (coverage, colour) painted over the ground in order
    if scene.shoulder > 0:
        layers.append(
            (_coverage(abs_u - half - scene.shoulder / 2, scene.shoulder / 2, footprint) * (1 - road), scene.shoulder_color)
        )
    if scene.kerbs:
        stripe = (np.floor(s / 1.5) % 2).astype(np.float32)
        kerb = _coverage(abs_u - half - 0.2, 0.2, footprint)
        layers += [(kerb * stripe, (200, 30, 30)), (kerb * (1 - stripe), (235, 235, 235))]
    wear = np.clip(1.2 - blotch, 0.3, 1.0)  # worn paint where the blotch noise is high
    if scene.edge_lines:
        layers.append((_coverage(abs_u - (half - 0.3), 0.075, footprint) * wear, scene.edge_color))
    if scene.centre_line != "none":
        line = _coverage(u, 0.06, footprint) * wear
        if scene.centre_line == "dashed":
            line *= (s % 9.0) < 3.0
        layers.append((line, scene.centre_color))

    # shadows: blotches of tree shade, and each nearby tree's own shadow
    shade = np.zeros_like(u)
    if scene.shadow_cover > 0:
        shade = np.clip((lookup(coarse, 1.5, so * 2, uo * 2) - (1 - scene.shadow_cover)) * 12, 0, 1)
    for os_, ou, kind, height, _ in track.objects_between(lo - 5, hi):
        if kind == "tree":
            d2 = ((s - os_ - 1.5) / (0.5 * height)) ** 2 + ((u - ou + np.sign(ou) * 0.6 * height) / (0.45 * height)) ** 2
            shade[d2 < 1] = 1.0
    fog = 1 - np.exp(-fwd / scene.fog)[:, None]
    light = (1 - scene.shadow_depth * shade) * (1 - fog)

    ground = np.empty(u.shape + (3,), np.float32)
    for c in range(3):
        g = (scene.verge[c] + (scene.verge_alt[c] - scene.verge[c]) * alt) * verge_tex * (1 - road) + scene.asphalt[c] * road_tex
        for weight, colour in layers:
            g += weight * (colour[c] - g)
        ground[..., c] = g * light + scene.sky_horizon[c] * fog
    return ground


def _draw_objects(image: np.ndarray, track: Track, scene: Scene, pose, hint: int, camera: Camera) -> None:
    """Roadside objects as painted billboards, far ones first, faded into the fog like the ground."""
    x0, y0, heading = pose
    s0 = hint * DS
    near = track.objects_between(s0 - 3, s0 + VIEW_AHEAD)
    if not near:
        return
    pts = np.array([track.pose(os_, ou)[:2] for os_, ou, *_ in near])
    c, s = math.cos(heading), math.sin(heading)
    fwd = (pts[:, 0] - x0) * c + (pts[:, 1] - y0) * s
    left = -(pts[:, 0] - x0) * s + (pts[:, 1] - y0) * c
    heights = np.array([o[3] for o in near])
    col, base, depth = camera.project(fwd, left, np.full_like(fwd, -camera.mount_height))
    _, top, _ = camera.project(fwd, left, heights - camera.mount_height)
    haze = scene.sky_horizon
    for k in np.argsort(-fwd):
        if depth[k] < 1.0:
            continue
        _, kind, height, colour = near[k][1:]
        width_m = OBJECT_KINDS[kind][1] * height / OBJECT_KINDS[kind][0]
        half = max(camera.focal * width_m / 2 / depth[k], 0.5)
        fog = 1 - math.exp(-fwd[k] / scene.fog)
        paint = tuple(float(v) for v in np.asarray(colour) * (1 - fog) + haze * fog)
        x, yb, yt = float(col[k]), float(base[k]), float(top[k])
        if not (-2 * half < x < camera.width_px + 2 * half):
            continue
        _billboard(image, kind, x, yb, yt, half, paint)


def _billboard(image: np.ndarray, kind: str, x: float, yb: float, yt: float, half: float, paint) -> None:
    def P(px: float, py: float) -> tuple[int, int]:
        return int(round(px * 16)), int(round(py * 16))

    aa, shift = cv2.LINE_AA, 4
    dark = tuple(v * 0.55 for v in paint)
    h = yb - yt
    if kind == "tree":
        trunk = (90 * 0.8, 60 * 0.8, 40 * 0.8)
        cv2.rectangle(image, P(x - half * 0.12, yb - h * 0.45), P(x + half * 0.12, yb), trunk, -1, aa, shift)
        cv2.ellipse(image, P(x, yb - h * 0.62), P(half, h * 0.38), 0, 0, 360, paint, -1, aa, shift)
    elif kind == "pole":
        cv2.rectangle(image, P(x - half, yt), P(x + half, yb), paint, -1, aa, shift)
    elif kind == "sign":
        cv2.rectangle(image, P(x - half * 0.08, yt + h * 0.3), P(x + half * 0.08, yb), (120, 120, 120), -1, aa, shift)
        cv2.rectangle(image, P(x - half, yt), P(x + half, yt + h * 0.35), paint, -1, aa, shift)
    elif kind == "cone":
        pts = np.array([P(x - half, yb), P(x + half, yb), P(x, yt)], np.int32)
        cv2.fillConvexPoly(image, pts, paint, aa, shift)
    elif kind == "car":
        cv2.rectangle(image, P(x - half, yb - h * 0.6), P(x + half, yb), paint, -1, aa, shift)
        cv2.rectangle(image, P(x - half * 0.6, yt), P(x + half * 0.6, yb - h * 0.55), dark, -1, aa, shift)
    else:  # rock, bush
        cv2.ellipse(image, P(x, yb - h * 0.5), P(half, h * 0.5), 0, 0, 360, paint, -1, aa, shift)

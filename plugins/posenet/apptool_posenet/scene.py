"""The built-in landmark and its renderer: textured planar quads seen through a pinhole camera.

The world is z-up, in metres.  A fixed landmark (a hall with a gate tower,
two wings, a building across the square, lamp posts) stands on a paved
square.  Facades carry procedural window grids over real photographs from
``skimage.data`` (brick, posters of the astronaut, coffee, the cat...), so the
view is distinctive in places and repetitive in others, as real facades are.

Each quad is drawn with ``cv2.warpPerspective`` of its texture (a mip level
chosen from the projected texel density) through the plane-induced
homography, clipped to the view frustum, and composited with a per-pixel
z-buffer: a plane's inverse depth is affine in the pixel coordinates, so the
buffer test is exact and costs one multiply-add per pixel.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np
import skimage.data

from apptool_posenet.geometry import intrinsics

NEAR = 0.1
PIXELS_PER_METRE = 16
GROUND_TILE_M = 6.0


@dataclass
class Quad:
    """A textured planar quad: corner ``origin`` (texture top-left), edges ``along`` (texture columns) and ``down`` (rows).

    ``repeat`` tiles the texture (u, v) times across the quad; ``mips`` is the
    texture pyramid (RGB or RGBA uint8; alpha cuts out the shape).
    """

    origin: np.ndarray
    along: np.ndarray
    down: np.ndarray
    mips: list[np.ndarray]
    repeat: tuple[float, float] = (1.0, 1.0)
    kind: str = "facade"  # "facade" (shaded by the sun) | "ground" | "object"

    @functools.cached_property
    def normal(self) -> np.ndarray:
        """Unit normal on the textured side."""
        n = np.cross(self.down, self.along)
        return n / np.linalg.norm(n)

    @functools.cached_property
    def corners(self) -> np.ndarray:
        o, a, d = self.origin, self.along, self.down
        return np.stack([o, o + a, o + a + d, o + d])


@dataclass
class Lighting:
    """Sun direction and strength, ambient light, colour cast, sky colours, exposure."""

    sun: np.ndarray = field(default_factory=lambda: np.array([0.4, -0.6, 0.7]))
    sun_strength: float = 0.5
    ambient: float = 0.55
    tint: np.ndarray = field(default_factory=lambda: np.ones(3))
    horizon: np.ndarray = field(default_factory=lambda: np.array([215.0, 225.0, 235.0]))
    zenith: np.ndarray = field(default_factory=lambda: np.array([90.0, 140.0, 210.0]))
    gain: float = 1.0


def pyramid(texture: np.ndarray, levels: int = 6) -> list[np.ndarray]:
    """Mip levels of a texture, halving until the short side would drop under 4 pixels."""
    mips = [np.ascontiguousarray(texture)]
    while len(mips) < levels and min(mips[-1].shape[:2]) >= 8:
        mips.append(cv2.pyrDown(mips[-1]))
    return mips


# -- textures ----------------------------------------------------------------
def _photo(name: str) -> np.ndarray:
    """A photograph shipped with scikit-image, as RGB uint8."""
    image = np.asarray(getattr(skimage.data, name)())
    if image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def _tiled(image: np.ndarray, height: int, width: int) -> np.ndarray:
    reps = (-(-height // image.shape[0]), -(-width // image.shape[1]), 1)
    return np.tile(image, reps)[:height, :width]


#: Photographs cropped into shop signs, so that each bay of a facade looks a little different.
SIGN_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "colorwheel",
    "coins",
    "camera",
    "moon",
    "page",
    "text",
    "retina",
    "clock",
)
SHUTTER_COLOURS = ((40, 90, 50), (120, 30, 30), (30, 60, 120), (200, 170, 60), (90, 60, 40), (60, 130, 140))


def _sign(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A crop of a random photograph, tinted, as a shop sign of the given pixel size."""
    photo = _photo(SIGN_PHOTOS[int(rng.integers(len(SIGN_PHOTOS)))]).astype(np.float32)
    ch = int(rng.uniform(0.2, 0.5) * photo.shape[0])
    cw = min(photo.shape[1], int(ch * width / max(height, 1)))
    top, left = int(rng.integers(0, photo.shape[0] - ch + 1)), int(rng.integers(0, photo.shape[1] - cw + 1))
    crop = photo[top : top + ch, left : left + cw]
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA) * rng.uniform(0.6, 1.2, 3)


def facade_texture(
    rng: np.random.Generator, width_m: float, height_m: float, wall: str, colour: tuple, floors: int, poster: str | None
) -> np.ndarray:
    """A building face: tinted wall material, windows with shutters, shop signs, a door, and maybe a poster photo.

    Shutters and signs vary from bay to bay, as on a real street, so that a
    part of a facade can be told from another part of the same facade.
    """
    h, w = int(height_m * PIXELS_PER_METRE), int(width_m * PIXELS_PER_METRE)
    base = cv2.resize(_photo(wall), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA).astype(np.float32)
    base = _tiled(base, h, w)
    texture = 0.45 * base + 0.55 * np.asarray(colour, np.float32)
    floor_h = h / floors
    bays = max(2, int(round(width_m / rng.uniform(2.5, 4.0))))
    bay_w = w / bays
    glass = rng.uniform(20, 70, 3)
    for f in range(floors):
        for b in range(bays):
            x0, y0 = int(b * bay_w + 0.3 * bay_w), int(f * floor_h + 0.25 * floor_h)
            x1, y1 = int((b + 1) * bay_w - 0.3 * bay_w), int((f + 1) * floor_h - 0.2 * floor_h)
            if rng.random() < 0.5:
                shutter = SHUTTER_COLOURS[int(rng.integers(len(SHUTTER_COLOURS)))]
                half = max(2, (x1 - x0) // 2)
                cv2.rectangle(texture, (x0 - half, y0), (x0, y1), shutter, -1)
                cv2.rectangle(texture, (x1, y0), (x1 + half, y1), shutter, -1)
            cv2.rectangle(texture, (x0 - 2, y0 - 2), (x1 + 2, y1 + 2), (235, 230, 220), -1)
            cv2.rectangle(texture, (x0, y0), (x1, y1), tuple(float(c) for c in glass + rng.uniform(0, 40)), -1)
            cv2.line(texture, ((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1), (200, 200, 200), 1)
    ground = h - floor_h
    for b in range(bays):
        if rng.random() < 0.75:
            x0, x1 = int(b * bay_w + 0.08 * bay_w), int((b + 1) * bay_w - 0.08 * bay_w)
            y0, y1 = int(ground + 0.03 * floor_h), int(ground + 0.2 * floor_h)
            texture[y0:y1, x0:x1] = _sign(rng, x1 - x0, y1 - y0)
    door = int(rng.integers(0, bays))
    x0, x1 = int(door * bay_w + 0.2 * bay_w), int((door + 1) * bay_w - 0.2 * bay_w)
    cv2.rectangle(texture, (x0, int(h - 0.8 * floor_h)), (x1, h), (60, 40, 30), -1)
    cv2.rectangle(texture, (0, 0), (w, max(2, h // 40)), (120, 110, 100), -1)  # cornice
    if poster:
        photo = _photo(poster).astype(np.float32)
        ph = int(min(0.55 * h, 0.4 * w * photo.shape[0] / photo.shape[1]))
        pw = int(ph * photo.shape[1] / photo.shape[0])
        px = int(rng.uniform(0.1, 0.9) * (w - pw))
        py = int(0.15 * h)
        texture[py : py + ph, px : px + pw] = cv2.resize(photo, (pw, ph), interpolation=cv2.INTER_AREA)
        cv2.rectangle(texture, (px, py), (px + pw, py + ph), (30, 30, 30), 2)
    return np.clip(texture, 0, 255).astype(np.uint8)


def ground_texture(first: str = "brick", second: str = "gravel") -> np.ndarray:
    """A paving tile (two photos, tinted, in a checker) that repeats every GROUND_TILE_M metres."""
    brick = cv2.resize(_photo(first), (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)
    gravel = cv2.resize(_photo(second), (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32)
    tile = np.zeros((256, 256, 3), np.float32)
    tile[:128, :128] = brick * [1.0, 0.85, 0.75]
    tile[128:, 128:] = brick * [0.9, 0.9, 0.95]
    tile[:128, 128:] = gravel * 0.9
    tile[128:, :128] = gravel * [0.8, 0.8, 0.75]
    return np.clip(tile, 0, 255).astype(np.uint8)


def lawn_texture() -> np.ndarray:
    """Grass, tinted green."""
    grass = cv2.resize(_photo("grass"), (256, 256), interpolation=cv2.INTER_AREA).astype(np.float32)
    return np.clip(grass * [0.55, 0.9, 0.45], 0, 255).astype(np.uint8)


def person_texture(rng: np.random.Generator) -> np.ndarray:
    """A pedestrian cut-out (RGBA, 0.5 m x 1.75 m at 32 px/m) with random clothes."""
    h, w = 56, 16
    rgba = np.zeros((h, w, 4), np.uint8)
    skin = tuple(int(c) for c in rng.uniform([140, 100, 80], [230, 190, 160]))
    shirt = tuple(int(c) for c in rng.uniform(20, 235, 3))
    trousers = tuple(int(c) for c in rng.uniform(10, 120, 3))
    cv2.circle(rgba, (w // 2, 5), 4, (*skin, 255), -1)
    cv2.rectangle(rgba, (3, 10), (w - 4, 32), (*shirt, 255), -1)
    cv2.rectangle(rgba, (4, 32), (w // 2 - 1, h - 1), (*trousers, 255), -1)
    cv2.rectangle(rgba, (w // 2 + 1, 32), (w - 5, h - 1), (*trousers, 255), -1)
    return rgba


# -- geometry of the landmark ------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """A site: buildings (x0, x1, y0, y1, height, wall photo, colour, floors, posters for S/E/N/W faces),
    posts (x, y), where cameras walk (x0, x1, y0, y1), a lawn, the seed of the facade details
    and the two photos of the paving.  Frozen and made of tuples, so a built site can be cached by it."""

    buildings: tuple
    posts: tuple
    walk_area: tuple
    lawn: tuple
    texture_seed: int
    paving: tuple = ("brick", "gravel")


BUILDINGS = (
    (-12.0, 12.0, 18.0, 30.0, 14.0, "brick", (200, 180, 150), 3, ("astronaut", None, None, "coffee")),
    (-3.0, 3.0, 14.0, 18.0, 22.0, "gravel", (190, 185, 175), 5, ("rocket", "chelsea", None, "camera")),
    (-34.0, -18.0, 10.0, 24.0, 9.0, "brick", (150, 90, 70), 2, ("coffee", "hubble_deep_field", None, None)),
    (18.0, 32.0, 12.0, 22.0, 11.0, "gravel", (120, 140, 170), 3, ("immunohistochemistry", None, None, "astronaut")),
    (-22.0, 12.0, -34.0, -24.0, 8.0, "brick", (210, 200, 120), 2, (None, "colorwheel", "chelsea", "rocket")),
)
#: Lamp posts (x, y): thin dark boxes that give parallax in the middle of the square.
POSTS = ((-14.0, 9.0), (-4.0, 9.5), (8.0, 9.0), (16.0, 7.0), (-20.0, -18.0), (6.0, -19.0), (24.0, -12.0))
#: Where cameras walk: x0, x1, y0, y1.
WALK_AREA = (-26.0, 26.0, -16.0, 6.0)
#: A lawn in the square: x0, x1, y0, y1.
LAWN = (-10.0, 4.0, -8.0, -2.0)
#: The built-in landmark every preset renders.
BUILTIN = Layout(BUILDINGS, POSTS, WALK_AREA, LAWN, 20150101)


def box_faces(x0, x1, y0, y1, height, textures) -> list[Quad]:
    """The four walls of an axis-aligned box, textures given for the S, E, N, W faces (seen from outside)."""
    top = height
    south = Quad(np.array([x0, y0, top]), np.array([x1 - x0, 0, 0.0]), np.array([0, 0, -top]), textures[0])
    east = Quad(np.array([x1, y0, top]), np.array([0, y1 - y0, 0.0]), np.array([0, 0, -top]), textures[1])
    north = Quad(np.array([x1, y1, top]), np.array([x0 - x1, 0, 0.0]), np.array([0, 0, -top]), textures[2])
    west = Quad(np.array([x0, y1, top]), np.array([0, y0 - y1, 0.0]), np.array([0, 0, -top]), textures[3])
    return [south, east, north, west]


def _site_radius(layout: Layout) -> float:
    return max(max(abs(v) for b in layout.buildings for v in b[:4]), max(abs(v) for v in layout.walk_area))


@functools.lru_cache(maxsize=2)
def landmark(layout: Layout = BUILTIN) -> tuple[Quad, ...]:
    """The static scene: ground, lawn, buildings and posts (built once per layout, the same for every seed)."""
    rng = np.random.default_rng(layout.texture_seed)
    paving = pyramid(ground_texture(*layout.paving))
    cell = 30.0  # the ground is a grid of quads so that each picks the mip level its distance needs
    near = float(cell * np.ceil(max(90.0, 1.5 * _site_radius(layout)) / cell))  # 90 m for the built-in site
    far = near * 400.0 / 90.0
    cells = [(x, y, cell, cell) for x in np.arange(-near, near, cell) for y in np.arange(-near, near, cell)]
    cells += [
        (-far, near, 2 * far, far - near),
        (-far, -far, 2 * far, far - near),
        (-far, -near, far - near, 2 * near),
        (near, -near, far - near, 2 * near),
    ]
    quads = [
        Quad(
            np.array([x, y + h, 0.0]),
            np.array([w, 0, 0]),
            np.array([0, -h, 0]),
            paving,
            repeat=(w / GROUND_TILE_M, h / GROUND_TILE_M),
            kind="ground",
        )
        for x, y, w, h in cells
    ]
    lx0, lx1, ly0, ly1 = layout.lawn
    quads += [
        Quad(
            np.array([lx0, ly1, 0.02]),
            np.array([lx1 - lx0, 0, 0]),
            np.array([0, ly0 - ly1, 0]),
            pyramid(lawn_texture()),
            repeat=((lx1 - lx0) / 4, (ly1 - ly0) / 4),
            kind="ground",
        ),
    ]
    for x0, x1, y0, y1, height, wall, colour, floors, posters in layout.buildings:
        widths = (x1 - x0, y1 - y0, x1 - x0, y1 - y0)
        textures = [
            pyramid(facade_texture(rng, wid, height, wall, colour, floors, poster)) for wid, poster in zip(widths, posters)
        ]
        quads += box_faces(x0, x1, y0, y1, height, textures)
    post = pyramid(np.full((64, 8, 3), (45, 45, 50), np.uint8))
    for x, y in layout.posts:
        quads += box_faces(x - 0.15, x + 0.15, y - 0.15, y + 0.15, 4.5, [post] * 4)
    return tuple(quads)


def footprints(layout: Layout = BUILTIN) -> list[list[list[float]]]:
    """Building outlines (x, y) for the top-down map."""
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]] for x0, x1, y0, y1, *_ in layout.buildings]


# -- rendering ----------------------------------------------------------------
def _clip(points: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman clipping of a convex polygon (camera coords) to the half-spaces n.X + d >= 0."""
    for plane in planes:
        if len(points) == 0:
            break
        dist = points @ plane[:3] + plane[3]
        kept = []
        for i in range(len(points)):
            j = (i + 1) % len(points)
            if dist[i] >= 0:
                kept.append(points[i])
            if (dist[i] >= 0) != (dist[j] >= 0):
                t = dist[i] / (dist[i] - dist[j])
                kept.append(points[i] + t * (points[j] - points[i]))
        points = np.array(kept)
    return points


def _frustum(k: np.ndarray, width: int, height: int) -> np.ndarray:
    """Near plane and the four side planes (one pixel outside the image) in camera coordinates."""
    f, cx, cy = k[0, 0], k[0, 2], k[1, 2]
    left, right = (-1.0 - cx) / f, (width - cx) / f
    top, bottom = (-1.0 - cy) / f, (height - cy) / f
    return np.array(
        [
            [0, 0, 1, -NEAR],
            [1, 0, -left, 0],
            [-1, 0, right, 0],
            [0, 1, -top, 0],
            [0, -1, bottom, 0],
        ]
    )


class Camera:
    """A pinhole camera of a given image size and horizontal field of view."""

    def __init__(self, width: int, height: int, hfov_deg: float = 60.0):
        self.width, self.height = int(width), int(height)
        self.k = intrinsics(self.width, self.height, hfov_deg)
        self.k_inv = np.linalg.inv(self.k)
        self.planes = _frustum(self.k, self.width, self.height)
        ys, xs = np.mgrid[0 : self.height, 0 : self.width]
        self.xs, self.ys = xs.astype(np.float64), ys.astype(np.float64)


def _sky(camera: Camera, rot: np.ndarray, light: Lighting) -> np.ndarray:
    """Sky colour by the elevation of each pixel's ray."""
    m = rot.T @ camera.k_inv  # pixel -> world ray direction
    rays = m[:, 0, None, None] * camera.xs + m[:, 1, None, None] * camera.ys + m[:, 2, None, None]
    elevation = rays[2] / np.linalg.norm(rays, axis=0)
    t = np.clip(elevation * 2.5, 0, 1)[:, :, None]
    return ((1 - t) * light.horizon + t * light.zenith).astype(np.float32)


def _shade(quad: Quad, light: Lighting) -> float:
    if quad.kind == "ground":
        return light.ambient + light.sun_strength * max(light.sun[2], 0.0)
    if quad.kind == "object":
        return light.ambient + 0.5 * light.sun_strength
    return light.ambient + light.sun_strength * max(float(quad.normal @ light.sun), 0.0)


def _draw_quad(canvas, zbuf, quad: Quad, camera: Camera, rot: np.ndarray, centre: np.ndarray, light: Lighting) -> None:
    to_cam = rot @ (quad.origin - centre)
    normal = rot @ quad.normal
    plane_d = float(normal @ to_cam)
    if plane_d >= -1e-9:  # back face, or the camera lies in the plane
        return
    corners = (quad.corners - centre) @ rot.T
    poly = _clip(corners, camera.planes)
    if len(poly) < 3:
        return
    pix = poly @ camera.k.T
    pix = pix[:, :2] / pix[:, 2:3]
    x0, y0 = np.floor(pix.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pix.max(axis=0)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, camera.width), min(y1, camera.height)
    if x1 <= x0 or y1 <= y0:
        return
    w, h = x1 - x0, y1 - y0
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, np.round((pix - [x0, y0]) * 16).astype(np.int32), 1, lineType=cv2.LINE_AA, shift=4)
    # plane-induced homography: texture pixel (s, t, 1) -> image pixel, for mip level 0
    shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
    level0 = quad.mips[0]
    base = camera.k @ np.column_stack(
        [rot @ quad.along * quad.repeat[0] / level0.shape[1], rot @ quad.down * quad.repeat[1] / level0.shape[0], to_cam]
    )
    # texels per pixel at the visible centroid picks the mip level
    inv = np.linalg.inv(base)
    cx, cy = pix.mean(axis=0)
    probe = np.array([[cx, cy, 1.0], [cx + 1, cy, 1.0], [cx, cy + 1, 1.0]]) @ inv.T
    probe = probe[:, :2] / probe[:, 2:3]
    texels = np.sqrt(abs(np.linalg.det(np.stack([probe[1] - probe[0], probe[2] - probe[0]]))))
    level = int(np.clip(np.floor(np.log2(max(texels, 1.0))), 0, len(quad.mips) - 1))
    texture = quad.mips[level]
    scale = np.diag([level0.shape[1] / texture.shape[1], level0.shape[0] / texture.shape[0], 1.0])
    border = cv2.BORDER_WRAP if quad.repeat != (1.0, 1.0) else cv2.BORDER_REPLICATE
    warped = cv2.warpPerspective(texture, shift @ base @ scale, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)
    visible = mask > 0
    if warped.shape[2] == 4:
        visible &= warped[:, :, 3] > 127
    coeff = camera.k_inv.T @ normal / plane_d  # inverse depth is affine in pixel coordinates
    inv_depth = coeff[0] * camera.xs[y0:y1, x0:x1] + coeff[1] * camera.ys[y0:y1, x0:x1] + coeff[2]
    visible &= inv_depth > zbuf[y0:y1, x0:x1]
    region = canvas[y0:y1, x0:x1]
    region[visible] = warped[:, :, :3][visible].astype(np.float32) * _shade(quad, light)
    zbuf[y0:y1, x0:x1][visible] = inv_depth[visible]


def render(
    camera: Camera,
    rot: np.ndarray,
    centre: np.ndarray,
    light: Lighting | None = None,
    objects: list[Quad] = (),
    noise: float = 0.0,
    rng: np.random.Generator | None = None,
    layout: Layout = BUILTIN,
) -> np.ndarray:
    """The RGB uint8 view of a site (plus extra ``objects``) from a camera at ``centre`` with rotation ``rot``."""
    light = light or Lighting()
    centre = np.asarray(centre, np.float64)
    canvas = _sky(camera, rot, light)
    zbuf = np.zeros((camera.height, camera.width))
    for quad in (*landmark(layout), *objects):
        _draw_quad(canvas, zbuf, quad, camera, rot, centre, light)
    canvas *= light.gain * np.asarray(light.tint, np.float32)
    if noise > 0:
        canvas += (rng or np.random.default_rng(0)).normal(0, noise, canvas.shape).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)

"""Procedural captioned scenes: coloured shapes in spatial relations on textured backgrounds.

Each scene has two objects in a clear spatial relation (left of, right of,
above, below), sometimes a third object further away, on one of four
background textures.  Five reference captions come from a small grammar with
synonyms ("big"/"large", "box"/"square", "under"/"beneath") and varied word
order (either object first, background before or after), so BLEU against
all references rewards a correct description in any phrasing.

Everything is drawn with OpenCV at 4x resolution and downsampled, so shapes
are anti-aliased; a scene is a pure function of the random generator.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import cv2
import numpy as np

COLOURS = {
    "red": (215, 35, 35),
    "green": (35, 165, 55),
    "blue": (40, 75, 225),
    "yellow": (240, 215, 30),
    "purple": (145, 50, 190),
    "orange": (250, 135, 20),
}
COLOUR_WORDS = {
    "red": ["red"],
    "green": ["green"],
    "blue": ["blue"],
    "yellow": ["yellow"],
    "purple": ["purple", "violet"],
    "orange": ["orange"],
}
SHAPE_WORDS = {
    "circle": ["circle", "disc"],
    "square": ["square", "box", "block"],
    "triangle": ["triangle"],
    "diamond": ["diamond", "rhombus"],
}
SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["large", "big"]}
BACKGROUND_WORDS = {
    "plain": ["plain"],
    "striped": ["striped"],
    "checkered": ["checkered", "checked"],
    "dotted": ["dotted", "spotted"],
}
RELATION_WORDS = {
    "left": ["to the left of", "left of", "on the left of"],
    "right": ["to the right of", "right of", "on the right of"],
    "above": ["above", "over"],
    "below": ["below", "under", "beneath"],
}
INVERSE = {"left": "right", "right": "left", "above": "below", "below": "above"}
#: Object radius as a fraction of the image side, by size word.
RADIUS = {"small": (0.07, 0.09), "large": (0.14, 0.17)}
SUPERSAMPLE = 4


@dataclass
class Thing:
    """One drawn object: what the captions name, and where it is (pixels of the output image)."""

    shape: str
    colour: str
    size: str
    x: float
    y: float
    r: float


@dataclass
class Scene:
    """A rendered scene, its ground truth and its reference captions."""

    image: np.ndarray  # HxWx3 uint8 RGB
    things: list[Thing]  # things[0] and things[1] are the pair in ``relation``
    relation: str  # where things[0] is relative to things[1]
    background: str
    captions: list[str]


def relation_of(a: Thing, b: Thing) -> str:
    """Where ``a`` is relative to ``b``, along the axis where they are further apart (y grows downwards)."""
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "above" if dy < 0 else "below"


def _muted_colour(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation colour, so the saturated objects stand out from any background."""
    hsv = np.uint8([[[rng.integers(0, 180), rng.integers(0, 50), rng.integers(90, 225)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


def _background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    base = _muted_colour(rng)
    other = np.clip(base + rng.choice([-1, 1]) * rng.uniform(30, 50), 0, 255)
    yy, xx = _grid(size)
    period = rng.uniform(0.12, 0.2) * size
    if kind == "plain":
        mask = np.zeros((size, size), bool)
    elif kind == "striped":
        angle = rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4])
        mask = ((xx * np.cos(angle) + yy * np.sin(angle)) // (period / 2)) % 2 == 0
    elif kind == "checkered":
        mask = ((xx // (period / 2)) + (yy // (period / 2))) % 2 == 0
    elif kind == "dotted":
        cx, cy = (xx % period) - period / 2, (yy % period) - period / 2
        mask = cx**2 + cy**2 < (0.22 * period) ** 2
    else:
        raise ValueError(f"unknown background {kind!r}")
    return np.where(mask[..., None], other.astype(np.float32), base)


def _draw(canvas: np.ndarray, thing: Thing, colour: np.ndarray) -> None:
    s = SUPERSAMPLE
    cx, cy, r = thing.x * s, thing.y * s, thing.r * s
    fill = tuple(float(v) for v in colour)
    if thing.shape == "circle":
        cv2.circle(canvas, (round(cx), round(cy)), round(r), fill, -1, cv2.LINE_AA)
        return
    if thing.shape == "square":
        h = 0.88 * r
        points = [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    elif thing.shape == "triangle":
        R = 1.15 * r
        points = [(cx + R * np.cos(a), cy + R * np.sin(a)) for a in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6)]
    else:  # diamond
        R = 1.15 * r
        points = [(cx, cy - R), (cx + R, cy), (cx, cy + R), (cx - R, cy)]
    cv2.fillPoly(canvas, [np.round(np.array(points)).astype(np.int32)], fill, cv2.LINE_AA)


def _sample_thing(rng: np.random.Generator, size: int) -> Thing:
    size_word = str(rng.choice(list(RADIUS)))
    lo, hi = RADIUS[size_word]
    return Thing(
        str(rng.choice(list(SHAPE_WORDS))), str(rng.choice(list(COLOURS))), size_word, 0.0, 0.0, float(rng.uniform(lo, hi) * size)
    )


def _place_pair(a: Thing, b: Thing, rng: np.random.Generator, size: int) -> bool:
    """Place two things with a clear relation: far apart on one axis, close on the other."""
    horizontal = rng.random() < 0.5
    for _ in range(50):
        for t in (a, b):
            margin = 1.2 * t.r + 1
            t.x, t.y = rng.uniform(margin, size - margin, 2)
        major, minor = (a.x - b.x, a.y - b.y) if horizontal else (a.y - b.y, a.x - b.x)
        if abs(major) >= 1.2 * (a.r + b.r) + 2 and abs(minor) <= 0.35 * abs(major):
            return True
    return False


def _place_third(c: Thing, pair: list[Thing], rng: np.random.Generator, size: int) -> bool:
    """Place a third thing further from both than the pair is from each other, so the pair stays unambiguous."""
    a, b = pair
    gap = np.hypot(a.x - b.x, a.y - b.y)
    for _ in range(50):
        margin = 1.2 * c.r + 1
        c.x, c.y = rng.uniform(margin, size - margin, 2)
        dists = [np.hypot(c.x - t.x, c.y - t.y) for t in pair]
        if min(dists) > gap + 2 and all(d >= 1.2 * (c.r + t.r) + 2 for d, t in zip(dists, pair)):
            return True
    return False


def _noun_phrase(thing: Thing, rng: np.random.Generator) -> str:
    colour = str(rng.choice(COLOUR_WORDS[thing.colour]))
    shape = str(rng.choice(SHAPE_WORDS[thing.shape]))
    words = [colour, shape] if rng.random() < 0.2 else [str(rng.choice(SIZE_WORDS[thing.size])), colour, shape]
    article = "an" if words[0][0] in "aeiou" else "a"
    return " ".join([article, *words])


TEMPLATES = (
    "{a} {rel} {b}{tail}",
    "{b} {inv} {a}{tail}",
    "there is {a} {rel} {b}{tail}",
    "{a} is {rel} {b}{tail}",
    "{b} is {inv} {a}{tail}",
    "{a} {rel} {b}{tail} on a {bg} background",
    "a {bg} background with {b} {inv} {a}{tail}",
    "an image of {a} {rel} {b}{tail}",
)
TAILS = (" and {c}", " with {c} nearby", " as well as {c}")


def captions_for(things: list[Thing], relation: str, background: str, rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct references from ``n`` different templates, each with fresh synonyms."""
    captions: list[str] = []
    for template in rng.permutation(len(TEMPLATES))[:n]:
        tail = str(rng.choice(TAILS)).format(c=_noun_phrase(things[2], rng)) if len(things) > 2 else ""
        captions.append(
            TEMPLATES[template].format(
                a=_noun_phrase(things[0], rng),
                b=_noun_phrase(things[1], rng),
                rel=rng.choice(RELATION_WORDS[relation]),
                inv=rng.choice(RELATION_WORDS[INVERSE[relation]]),
                bg=rng.choice(BACKGROUND_WORDS[background]),
                tail=tail,
            )
        )
    return captions


def grammar_words() -> list[str]:
    """Every word the caption grammar can produce, sorted: the built-in data's complete vocabulary."""
    phrases = [*TEMPLATES, *TAILS, "a an"]
    for table in (COLOUR_WORDS, SHAPE_WORDS, SIZE_WORDS, BACKGROUND_WORDS, RELATION_WORDS):
        phrases += [p for synonyms in table.values() for p in synonyms]
    return sorted({w for p in phrases for w in re.sub(r"\{\w+\}", " ", p).split()})


def make_scene(rng: np.random.Generator, size: int = 64, max_objects: int = 3, n_captions: int = 5) -> Scene:
    """One random scene with ``n_captions`` (at most len(TEMPLATES)) reference captions."""
    while True:
        things = [_sample_thing(rng, size), _sample_thing(rng, size)]
        if _place_pair(*things, rng, size):
            break
    if max_objects > 2 and rng.random() < 0.4:
        third = _sample_thing(rng, size)
        if _place_third(third, things, rng, size):
            things.append(third)
    background = str(rng.choice(list(BACKGROUND_WORDS)))
    big = size * SUPERSAMPLE
    # the texture is computed at 2x (the cost of a scene) and upsampled to the drawing canvas
    canvas = cv2.resize(_background(background, 2 * size, rng), (big, big), interpolation=cv2.INTER_LINEAR)
    for thing in things:
        colour = np.clip(np.array(COLOURS[thing.colour], np.float32) + rng.uniform(-15, 15, 3), 0, 255)
        _draw(canvas, thing, colour)
    image = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    relation = relation_of(things[0], things[1])
    return Scene(image, things, relation, background, captions_for(things, relation, background, rng, n_captions))


def make_scenes(n: int, seed: int | tuple[int, ...], size: int = 64, max_objects: int = 3, n_captions: int = 5) -> list[Scene]:
    """``n`` scenes, a pure function of ``seed`` (an int or a tuple: use different ones for disjoint splits)."""
    rng = np.random.default_rng(seed)
    return [make_scene(rng, size, max_objects, n_captions) for _ in range(n)]

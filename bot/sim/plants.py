"""Pillow drawings of plant-like (and insect-like) photos for the synthetic world.

The look of a plant is a pure function of its taxon ids, nested the way real taxonomy is:
the family fixes the growth form and a broad colour range, the genus fixes the shape (leaf outline,
petal count and shape, single flowers or clusters), the species its exact colours, a small detail
(petal marking, centre colour, petal length) and its foliage (leaf width, leaf saturation, pale or dark
veins), as real congeners differ in their leaves too: a leaf close-up says something about the species.
So species of one genus look alike, which is what makes genus fallbacks happen in the demo, yet a
careful look tells them apart (with flower hue alone no species cutoff reached 0.9 precision; see the
README's calibration figures).  Each photo then varies pose, scale, position, colour and background
from the caller's `random.Random`, so rendering is deterministic per seed.

Everything is drawn with polygons at the target size (no full-image rotations, no per-pixel Python)
so one 500x375 photo takes a few milliseconds.
"""

from __future__ import annotations

import colorsys
import io
import math
import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw

Point = tuple[float, float]
RGB = tuple[int, int, int]

FORMS = ("rosette", "upright", "branching", "clump")
LEAF_SHAPES = ("ellipse", "lanceolate", "round", "cordate", "linear", "lobed")
PETAL_SHAPES = ("round", "pointed", "long")
MARKINGS = ("none", "stripe", "dot", "ring")
CENTRES = ((250, 210, 40), (90, 50, 20), (245, 245, 225))
TAGS = ("habit", "flower", "leaf")


@dataclass(frozen=True)
class Look:
    """What a plant looks like; `look_for` derives it from taxon ids (see the module docstring)."""

    form: str
    leaf_shape: str
    petals: int
    petal_shape: str
    cluster: bool
    flower_hsv: tuple[float, float, float]
    leaf_hsv: tuple[float, float, float]
    centre: RGB
    marking: str
    petal_len: float
    leaf_width: float = 1.0  # scales the leaf outline's half-width (narrow or broad leaves)
    pale_veins: bool = False  # veins lighter than the blade instead of darker


def look_for(family_id: int, genus_id: int, species_id: int) -> Look:
    """Family -> form and hue range; genus -> shape; species -> colour and detail."""
    f, g, s = family_id % 1000, genus_id % 100, species_id % 100
    family_hue = (f * 137.5 + 20) % 360
    genus_hue = family_hue + ((g % 3) - 1) * 26 + (g // 3) * 9
    species_hue = genus_hue + ((s % 3) - 1) * 13
    return Look(
        form=FORMS[f % len(FORMS)],
        leaf_shape=LEAF_SHAPES[(2 * f + g) % len(LEAF_SHAPES)],
        petals=4 + (f + 3 * g) % 5,
        petal_shape=PETAL_SHAPES[(f + g) % len(PETAL_SHAPES)],
        cluster=(f + g) % 4 == 3,
        flower_hsv=((species_hue % 360) / 360, 0.55 + 0.1 * (s % 4), 0.95 - 0.08 * ((s // 3) % 2)),
        leaf_hsv=((95 + (f % 5) * 9 + (g % 3) * 12) / 360, 0.45 + 0.12 * (s % 3), 0.45 + 0.06 * (g % 4)),
        centre=CENTRES[(s + g) % len(CENTRES)],
        marking=MARKINGS[s % len(MARKINGS)],
        petal_len=1.0 + ((s % 5) - 2) * 0.07,
        leaf_width=(0.7, 1.0, 1.35)[s % 3],
        pale_veins=s % 3 == 1,
    )


def _rgb(hsv: tuple[float, float, float], jitter: tuple[float, float, float] = (0, 0, 1)) -> RGB:
    h, s, v = hsv
    r, g, b = colorsys.hsv_to_rgb((h + jitter[0]) % 1.0, min(1.0, s + jitter[1]), min(1.0, v * jitter[2]))
    return int(r * 255), int(g * 255), int(b * 255)


def _shade(c: RGB, f: float) -> RGB:
    return (min(255, int(c[0] * f)), min(255, int(c[1] * f)), min(255, int(c[2] * f)))


# ---------------------------------------------------------------- outlines (local coordinates)

def _profile(shape: str, t: float) -> float:
    """Half-width of a leaf or petal at fraction `t` of its length."""
    s = math.sin(math.pi * t)
    return {
        "ellipse": 0.28 * s,
        "lanceolate": 0.2 * s * (1.25 - t),
        "round": 0.48 * s ** 0.8,
        "cordate": 0.42 * s ** 0.6 * (1.35 - t),
        "linear": 0.07 * s ** 0.3,
        "lobed": 0.34 * s * (0.7 + 0.3 * math.cos(6 * math.pi * t)),
        "pointed": 0.3 * s ** 0.7 * (1.2 - t),
        "long": 0.16 * s ** 0.6,
    }.get(shape, 0.3 * s)


@lru_cache(maxsize=256)
def _outline(shape: str, steps: int = 10, width: float = 1.0) -> tuple[Point, ...]:
    """A closed outline from (0,0) to (1,0) along the x axis, symmetric about it, `width` times as wide."""
    ts = [i / steps for i in range(steps + 1)]
    upper = [(t, width * _profile(shape, t)) for t in ts]
    lower = [(t, -width * _profile(shape, t)) for t in reversed(ts[1:-1])]
    return tuple(upper + lower)


def _place(points: tuple[Point, ...], x: float, y: float, angle: float, length: float) -> list[Point]:
    """Rotate by `angle` (radians, 0 = pointing right, y down), scale by `length`, move to (x, y)."""
    ca, sa = math.cos(angle) * length, math.sin(angle) * length
    return [(x + px * ca - py * sa, y + px * sa + py * ca) for px, py in points]


# ---------------------------------------------------------------- backgrounds and noise

@lru_cache(maxsize=1)
def _noise_tile() -> Image.Image:
    """A fixed grain texture; photos crop it at random offsets (deterministic, unlike effect_noise)."""
    arr = np.random.default_rng(12345).normal(128, 9, (1100, 1100)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr, "L").convert("RGB")


def _add_grain(img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    tile = _noise_tile()
    if w > tile.width or h > tile.height:
        return img
    x, y = rng.randrange(tile.width - w + 1), rng.randrange(tile.height - h + 1)
    return ImageChops.add(img, tile.crop((x, y, x + w, y + h)), 1.0, -128)


def _gradient(size: tuple[int, int], top: RGB, bottom: RGB) -> Image.Image:
    w, h = size
    small = Image.linear_gradient("L").resize((8, max(2, h // 8)))
    img = Image.composite(Image.new("RGB", small.size, bottom), Image.new("RGB", small.size, top), small)
    return img.resize((max(1, w), max(1, h)), Image.Resampling.BILINEAR)


def _ground_colour(rng: random.Random) -> RGB:
    if rng.random() < 0.5:  # soil
        return (rng.randint(95, 150), rng.randint(70, 105), rng.randint(40, 70))
    return (rng.randint(60, 110), rng.randint(110, 160), rng.randint(40, 80))  # grass


def _habitat(size: tuple[int, int], rng: random.Random) -> tuple[Image.Image, float]:
    """Sky over soil or grass; returns the image and the horizon's y."""
    w, h = size
    horizon = h * rng.uniform(0.45, 0.75)
    sky = _gradient((w, int(horizon) + 1), (rng.randint(90, 150), rng.randint(150, 200), 235),
                    (rng.randint(200, 235), rng.randint(215, 240), 245))
    g = _ground_colour(rng)
    ground = _gradient((w, h - int(horizon)), _shade(g, 1.15), _shade(g, 0.75))
    img = Image.new("RGB", size)
    img.paste(sky, (0, 0))
    img.paste(ground, (0, int(horizon)))
    _scatter_blades(ImageDraw.Draw(img), rng, (0, int(horizon), w, h), g, 30)
    return img, horizon


def _closeup_background(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """Out-of-focus greenery or soil behind a close-up."""
    w, h = size
    base = _ground_colour(rng) if rng.random() < 0.4 else (rng.randint(40, 90), rng.randint(90, 140),
                                                             rng.randint(30, 70))
    small = _gradient((max(4, w // 10), max(4, h // 10)), _shade(base, rng.uniform(1.0, 1.3)),
                      _shade(base, rng.uniform(0.6, 0.9)))
    draw = ImageDraw.Draw(small)
    for _ in range(6):  # blurred blobs: other leaves, stones
        x, y, r = rng.uniform(0, small.width), rng.uniform(0, small.height), rng.uniform(2, small.width / 4)
        draw.ellipse((x - r, y - r / 2, x + r, y + r / 2), fill=_shade(base, rng.uniform(0.6, 1.4)))
    return small.resize(size, Image.Resampling.BILINEAR)


def _scatter_blades(draw: ImageDraw.ImageDraw, rng: random.Random, box: tuple[int, int, int, int],
                    colour: RGB, n: int) -> None:
    x0, y0, x1, y1 = box
    for _ in range(n):
        x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
        ln = rng.uniform(4, 14)
        draw.line((x, y, x + rng.uniform(-4, 4), y - ln), fill=_shade(colour, rng.uniform(0.7, 1.3)), width=1)


# ---------------------------------------------------------------- plant parts

@dataclass
class _Paint:
    """A photo's jittered colours for one plant."""

    petal: RGB
    petal_dark: RGB
    leaf: RGB
    leaf_dark: RGB
    stem: RGB
    centre: RGB


def _paint(look: Look, rng: random.Random) -> _Paint:
    jitter = (rng.uniform(-0.012, 0.012), rng.uniform(-0.05, 0.05), rng.uniform(0.85, 1.12))
    petal, leaf = _rgb(look.flower_hsv, jitter), _rgb(look.leaf_hsv, jitter)
    return _Paint(petal, _shade(petal, 0.55), leaf, _shade(leaf, 0.7), _shade(leaf, 0.8),
                  _shade(look.centre, jitter[2]))


def draw_leaf(draw: ImageDraw.ImageDraw, look: Look, paint: _Paint, x: float, y: float,
              angle: float, length: float, veins: bool = False) -> None:
    draw.polygon(_place(_outline(look.leaf_shape, 10, look.leaf_width), x, y, angle, length), fill=paint.leaf,
                 outline=paint.leaf_dark)
    if veins and length > 20:
        tip = _place(((1.0, 0.0),), x, y, angle, length)[0]
        width = max(1, int(length / 80))
        vein = _shade(paint.leaf, 1.6) if look.pale_veins else paint.leaf_dark
        draw.line((x, y, *tip), fill=vein, width=width)
        for t in (0.25, 0.45, 0.65):
            half = _profile(look.leaf_shape, t) * 0.8 * look.leaf_width
            for side in (1, -1):
                a, b = _place(((t, 0.0), (t + 0.12, side * half)), x, y, angle, length)
                draw.line((*a, *b), fill=vein, width=width)


def draw_flower(draw: ImageDraw.ImageDraw, look: Look, paint: _Paint, x: float, y: float,
                radius: float, rotation: float) -> None:
    if look.cluster:
        small = radius * 0.38
        for k in range(7):
            a = rotation + k * 2 * math.pi / 6
            cx, cy = (x, y) if k == 6 else (x + math.cos(a) * radius * 0.55, y + math.sin(a) * radius * 0.55)
            _single_flower(draw, look, paint, cx, cy, small, rotation + k)
    else:
        _single_flower(draw, look, paint, x, y, radius, rotation)


def _single_flower(draw: ImageDraw.ImageDraw, look: Look, paint: _Paint, x: float, y: float,
                   radius: float, rotation: float) -> None:
    length = radius * look.petal_len
    for k in range(look.petals):
        a = rotation + k * 2 * math.pi / look.petals
        draw.polygon(_place(_outline(look.petal_shape, 8), x, y, a, length), fill=paint.petal,
                     outline=paint.petal_dark if radius > 15 else None)
        if look.marking == "stripe" and radius > 6:
            a0, a1 = _place(((0.3, 0.0), (0.8, 0.0)), x, y, a, length)
            draw.line((*a0, *a1), fill=paint.petal_dark, width=max(1, int(radius / 14)))
        elif look.marking == "dot" and radius > 6:
            (dx, dy), r = _place(((0.72, 0.0),), x, y, a, length)[0], max(1.0, radius * 0.07)
            draw.ellipse((dx - r, dy - r, dx + r, dy + r), fill=paint.petal_dark)
    if look.marking == "ring" and radius > 6:
        r = radius * 0.45
        draw.ellipse((x - r, y - r, x + r, y + r), outline=paint.petal_dark, width=max(1, int(radius / 10)))
    r = radius * 0.24
    draw.ellipse((x - r, y - r, x + r, y + r), fill=paint.centre)


def _stem(draw: ImageDraw.ImageDraw, paint: _Paint, a: Point, b: Point, width: float) -> None:
    draw.line((*a, *b), fill=paint.stem, width=max(1, int(width)))


def _stems(look: Look, base: Point, height: float, up: float, rng: random.Random) -> list[tuple[Point, Point]]:
    """Stem segments (start, tip) of the growth form; every tip but a branching trunk's bears a flower."""
    bx, by = base
    if look.form == "upright":
        return [((bx, by), (bx + math.cos(up) * height, by + math.sin(up) * height))]
    if look.form == "rosette":
        angles = [up + (k - 1) * 0.25 + rng.uniform(-0.08, 0.08) for k in range(rng.randint(1, 3))]
        return [((bx, by), (bx + math.cos(a) * height, by + math.sin(a) * height)) for a in angles]
    n = 3 if look.form == "branching" else rng.randint(5, 7)
    spread = 0.35 if look.form == "branching" else 0.6
    fork = (bx, by) if look.form == "clump" else (bx + math.cos(up) * height * 0.3, by + math.sin(up) * height * 0.3)
    out = []
    for k in range(n):
        a = up + (k / (n - 1) - 0.5) * 2 * spread + rng.uniform(-0.05, 0.05)
        h = height * (0.75 if k == n // 2 else rng.uniform(0.5, 0.65))
        out.append((fork, (fork[0] + math.cos(a) * h, fork[1] + math.sin(a) * h)))
    return out


def draw_habit(draw: ImageDraw.ImageDraw, look: Look, paint: _Paint, base: Point, height: float,
               tilt: float, rng: random.Random) -> None:
    """The whole plant standing on the ground at `base`, `height` pixels tall, leaning by `tilt`."""
    bx, by = base
    up = -math.pi / 2 + tilt
    flower_r = height * (0.11 if look.form != "clump" else 0.075)
    leaf_len = height * (0.28 if look.form == "rosette" else 0.2)
    if look.form == "rosette":
        for k in range(rng.randint(7, 10)):
            draw_leaf(draw, look, paint, bx, by, up + (k / 4.5 - 1) * 1.3 + rng.uniform(-0.1, 0.1),
                      leaf_len * rng.uniform(0.8, 1.1))
    stems = _stems(look, base, height, up, rng)
    if look.form == "branching":
        _stem(draw, paint, base, stems[0][0], height / 60)
        _leaves_along(draw, look, paint, base, stems[0][0], leaf_len, rng)
    for a, b in stems:
        _stem(draw, paint, a, b, height / 70)
    for a, b in stems:
        _leaves_along(draw, look, paint, a, b, leaf_len * (0.6 if look.form == "clump" else 1.0), rng)
    for _, b in stems:
        draw_flower(draw, look, paint, b[0], b[1], flower_r * rng.uniform(0.85, 1.1), rng.uniform(0, 6.3))


def _leaves_along(draw: ImageDraw.ImageDraw, look: Look, paint: _Paint, a: Point, b: Point,
                  leaf_len: float, rng: random.Random) -> None:
    dx, dy = b[0] - a[0], b[1] - a[1]
    angle = math.atan2(dy, dx)
    for t in (0.3, 0.55, 0.78):
        x, y = a[0] + dx * t, a[1] + dy * t
        for side in (1, -1):
            draw_leaf(draw, look, paint, x, y, angle + side * rng.uniform(0.7, 1.1), leaf_len * (1.1 - t * 0.5))


# ---------------------------------------------------------------- whole photos

def render(look: Look, rng: random.Random, size: tuple[int, int], tag: str) -> Image.Image:
    """One photo of a plant with this look; `tag` is habit, flower or leaf."""
    w, h = size
    paint = _paint(look, rng)
    scale = rng.uniform(0.7, 1.1)
    if tag == "habit":
        img, horizon = _habitat(size, rng)
        draw = ImageDraw.Draw(img)
        base = (w * rng.uniform(0.3, 0.7), min(h * 0.97, horizon + h * rng.uniform(0.1, 0.3)))
        height = min(h * 0.7 * scale, base[1] - h * 0.12)  # flowers stay inside the frame
        draw_habit(draw, look, paint, base, height, rng.uniform(-0.12, 0.12), rng)
    elif tag == "flower":
        img = _closeup_background(size, rng)
        draw = ImageDraw.Draw(img)
        r = min(w, h) * 0.33 * scale * rng.uniform(0.8, 1.2)
        if rng.random() < 0.5:  # a leaf behind
            draw_leaf(draw, look, paint, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0, 6.3), r * 1.8)
        draw_flower(draw, look, paint, w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65), r,
                    rng.uniform(0, 2 * math.pi))
    elif tag == "leaf":
        img = _closeup_background(size, rng)
        draw = ImageDraw.Draw(img)
        length = min(w, h) * 0.85 * scale
        a = rng.uniform(0, 2 * math.pi)
        cx, cy = w * rng.uniform(0.4, 0.6), h * rng.uniform(0.4, 0.6)
        draw_leaf(draw, look, paint, cx - math.cos(a) * length / 2, cy - math.sin(a) * length / 2, a, length,
                  veins=True)
    else:
        raise ValueError(f"unknown photo tag {tag!r} (expected one of {', '.join(TAGS)})")
    return _add_grain(img, rng)


def render_insect(seed_id: int, rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A beetle/bee-like insect on a leafy background (the world's non-plant observations)."""
    w, h = size
    img = _closeup_background(size, rng)
    draw = ImageDraw.Draw(img)
    body = _rgb(((seed_id * 0.17) % 1.0, 0.8, 0.8), (rng.uniform(-0.02, 0.02), 0, rng.uniform(0.85, 1.1)))
    cx, cy, s = w * rng.uniform(0.35, 0.65), h * rng.uniform(0.35, 0.65), min(w, h) * rng.uniform(0.12, 0.2)
    a = rng.uniform(0, 2 * math.pi)
    ca, sa = math.cos(a), math.sin(a)
    for k in range(3):  # legs on both sides of each body segment
        for side in (1, -1):
            px, py = cx + ca * (k - 1) * s * 0.6, cy + sa * (k - 1) * s * 0.6
            draw.line((px, py, px - sa * side * s * 1.4, py + ca * side * s * 1.4), fill=(20, 20, 20),
                      width=max(1, int(s / 12)))
    for k, r in ((-1, 0.45), (0, 0.55), (1, 0.8)):  # head, thorax, abdomen
        px, py = cx + ca * k * s * 0.9, cy + sa * k * s * 0.9
        draw.ellipse((px - r * s, py - r * s, px + r * s, py + r * s), fill=body if k else (25, 25, 25))
    return _add_grain(img, rng)


def to_jpeg(img: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()

"""Procedural synthetic "flower photos" for grading without the real data set.

The five classes differ only in shape and arrangement. Every colour (petals,
centres, stems, background) comes from one distribution shared by all classes,
and every image carries the same kinds of clutter (grass strokes, leaves,
blobs, blur, noise, JPEG artefacts). A model that averages small local features
over the whole image therefore stays near chance, while a CNN that sees whole
flowers can separate the classes: that gap is what the grader's quick profile
relies on to tell a real convolutional model from a degenerate one.
"""

from __future__ import annotations

import colorsys
import io
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
from PIL import Image, ImageChops, ImageDraw

CLASSES: tuple[str, ...] = ("daisy", "dandelion", "roses", "sunflowers", "tulips")

Colour = tuple[int, int, int]
Rng = np.random.Generator

# Shapes are drawn at twice the output size and box-downscaled: cheap antialiasing.
_SUPERSAMPLE = 2

# Sample positions along a petal, shared by the thousands of petals drawn per second.
_PETAL_S = np.linspace(0.0, 1.0, 9)
_PETAL_SIN = np.sin(np.pi * _PETAL_S)


@dataclass(frozen=True)
class _Palette:
    """The colours of one image; drawn without looking at the class."""

    petal: Colour
    centre: Colour
    stem: Colour
    back_a: Colour
    back_b: Colour


@dataclass(frozen=True)
class _Canvas:
    """A drawing surface plus the two lengths every painter scales by."""

    draw: ImageDraw.ImageDraw
    side: int  # canvas side in pixels
    line: int  # width of a thin line in canvas pixels


# ---------------------------------------------------------------- colours


def _hsv(h: float, s: float, v: float) -> Colour:
    """An 8-bit RGB colour from hue (wraps), saturation and value in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (int(r * 255 + 0.5), int(g * 255 + 0.5), int(b * 255 + 0.5))


def _scale(c: Colour, f: float) -> Colour:
    """`c` made brighter (f > 1) or darker (f < 1), clipped to 8 bits."""
    return tuple(min(255, max(0, int(x * f + 0.5))) for x in c)  # type: ignore[return-value]


def _mix(a: Colour, b: Colour, t: float) -> Colour:
    """Linear blend, t = 0 gives `a`."""
    return tuple(int(x + (y - x) * t + 0.5) for x, y in zip(a, b))  # type: ignore[return-value]


def _jitter(c: Colour, rng: Rng, spread: float = 0.15) -> Colour:
    """A slightly different shade, so repeated parts do not look stamped."""
    return _scale(c, 1.0 + rng.uniform(-spread, spread))


def _bright_colour(rng: Rng) -> Colour:
    """Any hue at all: petals and centres must not give the class away."""
    return _hsv(rng.random(), rng.uniform(0.1, 1.0), rng.uniform(0.45, 1.0))


def _palette(rng: Rng) -> _Palette:
    """Class-independent colours; centre and petal share one distribution."""
    back_a = _hsv(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.12, 0.7))
    back_b = _jitter(_hsv(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.12, 0.7)), rng)
    petal = _bright_colour(rng)
    # Resample until shapes stay visible against their surroundings; bounded so it always ends.
    for _ in range(12):
        if min(math.dist(petal, back_a), math.dist(petal, back_b)) > 120:
            break
        petal = _bright_colour(rng)
    centre = _bright_colour(rng)
    for _ in range(12):
        if math.dist(centre, petal) > 110:
            break
        centre = _bright_colour(rng)
    stem = _hsv(rng.uniform(0.15, 0.45), rng.uniform(0.3, 0.9), rng.uniform(0.2, 0.7))
    return _Palette(petal, centre, stem, back_a, back_b)


# ---------------------------------------------------------------- geometry


def _petal_polygon(
    cx: float, cy: float, angle: float, r0: float, r1: float, half_w: float, sharp: float
) -> list[float]:
    """A petal (or leaf) pointing along `angle` from radius r0 to r1, as a flat xy list.

    The width profile sin(pi*s)**sharp is round near 0.5 and pointed at 1 or more,
    so one function serves thin daisy petals, broad sunflower petals and leaves.
    """
    s = _PETAL_S
    w = half_w * _PETAL_SIN**sharp
    along = np.concatenate([r0 + (r1 - r0) * s, r0 + (r1 - r0) * s[::-1]])
    across = np.concatenate([w, -w[::-1]])
    ca, sa = math.cos(angle), math.sin(angle)
    xs = cx + along * ca - across * sa
    ys = cy + along * sa + across * ca
    return np.stack([xs, ys], axis=1).ravel().tolist()


def _petal_ring(
    cv: _Canvas, cx: float, cy: float, r0: float, r1: float, count: int,
    half_w: float, sharp: float, rot: float, fill: Colour, rng: Rng,
) -> None:
    """`count` petals around a centre, each outlined so every class has thin edges."""
    edge = _scale(fill, 0.7)
    for k in range(count):
        a = rot + 2 * math.pi * k / count + rng.normal(0.0, 0.06)
        reach = r1 * rng.uniform(0.88, 1.05)
        pts = _petal_polygon(cx, cy, a, r0, reach, half_w, sharp)
        cv.draw.polygon(pts, fill=_jitter(fill, rng, 0.08), outline=edge, width=cv.line)


def _disc(
    cv: _Canvas, x: float, y: float, r: float, fill: Colour, outline: Colour | None = None
) -> None:
    """A filled circle, optionally outlined with a thin line."""
    cv.draw.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=outline, width=cv.line)


def _seeds(cv: _Canvas, cx: float, cy: float, r: float, count: int, base: Colour, rng: Rng) -> None:
    """Dots packed on a golden-angle spiral: the seed texture of flower centres.

    One shade only: alternating shades draw spiral arms that look like a rose's bud.
    """
    dot = r / math.sqrt(count) * 0.55
    dark = _scale(base, 0.55)
    for k in range(count):
        rad = r * 0.92 * math.sqrt((k + 0.5) / count)
        a = k * 2.39996
        _disc(cv, cx + rad * math.cos(a), cy + rad * math.sin(a), dot, dark)


def _stem(
    cv: _Canvas, x: float, y: float, length: float, angle: float, width: float, colour: Colour
) -> None:
    """A gently bent stem hanging from (x, y); angle 0 points straight down."""
    # The bend is derived from the arguments, not the rng, so adding stems elsewhere
    # does not shift every later random draw.
    bend = length * 0.15 * math.sin(angle * 3.0 + length)
    mx = x + math.sin(angle) * length * 0.5 + bend * 0.3
    my = y + math.cos(angle) * length * 0.5
    ex, ey = x + math.sin(angle) * length, y + math.cos(angle) * length
    cv.draw.line([x, y, mx, my, ex, ey], fill=colour, width=max(1, int(width)), joint="curve")


def _leaf(
    cv: _Canvas, x: float, y: float, length: float, angle: float, colour: Colour, rng: Rng
) -> None:
    """A pointed leaf with a midrib; shared by every class as clutter or foliage."""
    pts = _petal_polygon(x, y, angle, 0.0, length, length * rng.uniform(0.12, 0.25), 1.0)
    cv.draw.polygon(pts, fill=colour, outline=_scale(colour, 0.7), width=cv.line)
    ex, ey = x + length * 0.9 * math.cos(angle), y + length * 0.9 * math.sin(angle)
    cv.draw.line([x, y, ex, ey], fill=_scale(colour, 1.25), width=cv.line)


def _place(rng: Rng, side: int, margin: float = 0.15) -> tuple[float, float]:
    """A random point, allowed close to the border so flowers are sometimes cut off."""
    return (side * rng.uniform(margin, 1 - margin), side * rng.uniform(margin, 1 - margin))


def _maybe_stem(cv: _Canvas, x: float, y: float, r: float, pal: _Palette, rng: Rng) -> None:
    """Most flowers get a stem, so stems (long thin lines) are no class cue."""
    if rng.random() < 0.6:
        length, lean = cv.side * rng.uniform(0.3, 0.9), rng.normal(0, 0.3)
        _stem(cv, x, y, length, lean, r * 0.12 + 1, _jitter(pal.stem, rng))


# ---------------------------------------------------------------- the five motifs


def _daisy(cv: _Canvas, pal: _Palette, rng: Rng) -> None:
    """One to three big radial flowers with many thin petals and a small centre."""
    n = int(rng.choice([1, 1, 2, 3]))
    for _ in range(n):
        x, y = _place(rng, cv.side)
        r = cv.side * rng.uniform(0.16, 0.32) / math.sqrt(n)
        _maybe_stem(cv, x, y, r, pal, rng)
        core = r * rng.uniform(0.15, 0.25)
        count = int(rng.integers(16, 30))
        half_w = r * rng.uniform(0.05, 0.08)
        rot = rng.uniform(0, 6.3)
        _petal_ring(cv, x, y, core * 0.6, r, count, half_w, 0.5, rot, pal.petal, rng)
        _disc(cv, x, y, core, _jitter(pal.centre, rng), _scale(pal.centre, 0.7))
        _seeds(cv, x, y, core, int(rng.integers(8, 16)), pal.centre, rng)


def _dandelion(cv: _Canvas, pal: _Palette, rng: Rng) -> None:
    """Many small fluffy seed heads (radial bristles round a dot) scattered about."""
    n = int(rng.integers(4, 15))
    for _ in range(n):
        x, y = _place(rng, cv.side, 0.05)
        r = cv.side * rng.uniform(0.05, 0.095)
        # Fewer stems than tulips have: thin stalks under small heads read as tulips.
        if rng.random() < 0.3:
            length, lean = cv.side * rng.uniform(0.15, 0.6), rng.normal(0, 0.3)
            _stem(cv, x, y, length, lean, cv.line, _jitter(pal.stem, rng))
        fluff = _jitter(pal.petal, rng, 0.1)
        _disc(cv, x, y, r * rng.uniform(0.45, 0.65), _mix(fluff, pal.back_a, 0.35))
        bristles = int(rng.integers(20, 32))
        rot = rng.uniform(0, 6.3)
        for k in range(bristles):
            a = rot + 2 * math.pi * k / bristles
            rr = r * rng.uniform(0.8, 1.1)
            tip = (x + rr * math.cos(a), y + rr * math.sin(a))
            cv.draw.line([x, y, *tip], fill=fluff, width=cv.line)
            _disc(cv, *tip, cv.line * 0.9, fluff)
        _disc(cv, x, y, r * 0.2, _jitter(pal.centre, rng))


def _rose(cv: _Canvas, pal: _Palette, rng: Rng) -> None:
    """Roses: rings of overlapping round petals shrinking to a spiral bud."""
    n = int(rng.choice([1, 1, 2, 3]))
    for _ in range(n):
        x, y = _place(rng, cv.side)
        r = cv.side * rng.uniform(0.15, 0.28) / math.sqrt(n)
        _maybe_stem(cv, x, y, r, pal, rng)
        rings, rot = int(rng.integers(3, 5)), rng.uniform(0, 6.3)
        for k in range(rings):
            rk = r * (1 - k / (rings + 0.3))
            fill = _mix(pal.petal, pal.centre, 0.6 * k / rings)
            m = int(rng.integers(4, 7))
            for j in range(m):
                a = rot + 0.8 * k + 2 * math.pi * j / m
                pr = 0.55 * rk
                _disc(cv, x + 0.45 * rk * math.cos(a), y + 0.45 * rk * math.sin(a), pr,
                      _jitter(fill, rng, 0.1), _scale(fill, 0.6))
        _spiral(cv, x, y, r / (rings + 0.3), rot, _scale(pal.petal, 0.55))


def _spiral(cv: _Canvas, x: float, y: float, r: float, rot: float, colour: Colour) -> None:
    """The rolled-up bud at the heart of a rose."""
    t = np.linspace(0.0, 1.0, 40)
    a = rot + t * 5.5 * math.pi
    pts = np.stack([x + r * t * np.cos(a), y + r * t * np.sin(a)], axis=1).ravel().tolist()
    cv.draw.line(pts, fill=colour, width=cv.line, joint="curve")


def _sunflower(cv: _Canvas, pal: _Palette, rng: Rng) -> None:
    """A large seed disc ringed by short, broad, pointed petals (one to three heads)."""
    n = int(rng.choice([1, 1, 2, 3]))
    for _ in range(n):
        x, y = _place(rng, cv.side)
        r = cv.side * rng.uniform(0.17, 0.32) / math.sqrt(n)
        _maybe_stem(cv, x, y, r, pal, rng)
        core = r * rng.uniform(0.5, 0.62)
        count = int(rng.integers(12, 20))
        rot = rng.uniform(0, 6.3)
        half_w = r * math.pi * 0.9 / count * rng.uniform(1.0, 1.4)
        # Two staggered rings, the back one darker, as on a real sunflower head.
        back = _scale(pal.petal, 0.85)
        _petal_ring(cv, x, y, core * 0.8, r, count, half_w, 1.0, rot + math.pi / count, back, rng)
        _petal_ring(cv, x, y, core * 0.8, r * 0.9, count, half_w, 1.0, rot, pal.petal, rng)
        _disc(cv, x, y, core, _jitter(pal.centre, rng), _scale(pal.centre, 0.6))
        _seeds(cv, x, y, core, int(rng.integers(30, 60)), pal.centre, rng)


def _tulip(cv: _Canvas, pal: _Palette, rng: Rng) -> None:
    """Upright cups with pointed rims on long stems with leaves (one to four)."""
    n = int(rng.integers(1, 5))
    for _ in range(n):
        x, _ = _place(rng, cv.side, 0.1)
        # The cup hangs below (x, y): keep y high enough for it to stay in frame.
        y = cv.side * rng.uniform(0.08, 0.7)
        h = cv.side * rng.uniform(0.16, 0.28) / n ** 0.3
        tilt = rng.normal(0.0, 0.25)
        w = h * rng.uniform(0.35, 0.5)
        bottom = (x - math.sin(tilt) * h, y + math.cos(tilt) * h)
        stem = _jitter(pal.stem, rng)
        _stem(cv, bottom[0], bottom[1], cv.side * rng.uniform(0.3, 0.9), tilt, w * 0.18 + 1, stem)
        if rng.random() < 0.6:
            sx, sy = bottom[0], bottom[1] + h * rng.uniform(0.8, 2.0)
            side = 1 if rng.random() < 0.5 else -1
            angle = -math.pi / 2 + side * rng.uniform(0.3, 0.8)
            _leaf(cv, sx, sy, h * rng.uniform(1.0, 2.0), angle, stem, rng)
        _cup(cv, x, y, w, h, tilt, pal, rng)


def _cup(
    cv: _Canvas, x: float, y: float, w: float, h: float, tilt: float, pal: _Palette, rng: Rng
) -> None:
    """A tulip head: U-shaped cup, three rim points, petal seams as thin lines."""
    a = np.linspace(0.0, math.pi, 14)
    u = np.concatenate([w * np.cos(a), [-w * 1.05, -w * 0.4, 0.0, w * 0.4, w * 1.05]])
    v = np.concatenate([h * (0.45 + 0.55 * np.sin(a)), [0.0, h * 0.3, -0.05 * h, h * 0.3, 0.0]])
    ct, st = math.cos(tilt), math.sin(tilt)
    pts = np.stack([x + u * ct - v * st, y + u * st + v * ct], axis=1)
    fill = _jitter(pal.petal, rng, 0.1)
    cv.draw.polygon(pts.ravel().tolist(), fill=fill, outline=_scale(fill, 0.65), width=cv.line)
    seam = _mix(_scale(fill, 0.6), pal.centre, 0.4)
    for top, base in ((16, 7), (18, 9), (14, 5)):
        cv.draw.line([*pts[top], *pts[base]], fill=seam, width=cv.line)


_PAINTERS: tuple[Callable[[_Canvas, _Palette, Rng], None], ...] = (
    _daisy, _dandelion, _rose, _sunflower, _tulip,
)


# ---------------------------------------------------------------- background and clutter


def _backdrop(size: int, pal: _Palette, rng: Rng, clutter: float = 1.0) -> Image.Image:
    """Two colours blended by smooth random blotches, plus mid-frequency mottling."""
    # Pillow's C paths (resize, composite, add) keep this a small part of the budget.
    k = int(rng.integers(2, 6))
    blotch = Image.fromarray((rng.random((k, k)) * 255).astype(np.uint8), "L")
    mask = blotch.resize((size, size), Image.BICUBIC)
    back = Image.composite(
        Image.new("RGB", (size, size), pal.back_b), Image.new("RGB", (size, size), pal.back_a), mask
    )
    g = max(2, size // 12)
    amp = rng.uniform(0.0, 40.0) * clutter
    mottle = Image.fromarray((rng.random((g, g)) * amp).astype(np.uint8), "L")
    mottle = mottle.resize((size, size), Image.BICUBIC)
    return ImageChops.add(back, Image.merge("RGB", (mottle,) * 3), 1.0, -int(amp / 2))


def _clutter(cv: _Canvas, pal: _Palette, rng: Rng, clutter: float = 1.0) -> None:
    """Grass, leaves and blobs in every class, in the palette's own colours."""
    side = cv.side
    for _ in range(int(rng.integers(0, 24) * clutter)):
        x, y = side * rng.random(), side * rng.uniform(0.2, 1.2)
        length, lean = side * rng.uniform(0.1, 0.5), rng.normal(0, 0.35)
        blade = _jitter(_mix(pal.stem, pal.back_b, rng.random() * 0.6), rng)
        # Negative length: blades grow up from the ground instead of hanging down.
        _stem(cv, x, y, -length, lean, cv.line * rng.uniform(1, 3), blade)
    for _ in range(int(rng.integers(0, 4) * clutter)):
        x, y = side * rng.random(), side * rng.random()
        colour = _jitter(pal.stem, rng, 0.3)
        _leaf(cv, x, y, side * rng.uniform(0.1, 0.3), rng.uniform(0, 6.3), colour, rng)
    colours = (pal.petal, pal.centre, pal.back_b, pal.stem)
    for _ in range(int(rng.integers(0, 8) * clutter)):
        x, y = side * rng.random(), side * rng.random()
        c = _mix(colours[int(rng.integers(0, 4))], pal.back_a, rng.uniform(0.2, 0.7))
        _disc(cv, x, y, side * rng.uniform(0.01, 0.045), c)


def _occlude(cv: _Canvas, pal: _Palette, rng: Rng, clutter: float = 1.0) -> None:
    """Now and then a big foreground leaf, grown in from an edge, hides part of the subject."""
    if rng.random() >= 0.2 * clutter:
        return
    side = cv.side
    edge = int(rng.integers(0, 4))
    t = rng.uniform(0.1, 0.9) * side
    x, y = [(0.0, t), (side, t), (t, 0.0), (t, float(side))][edge]
    inward = [0.0, math.pi, math.pi / 2, -math.pi / 2][edge] + rng.normal(0, 0.4)
    colour = _jitter(_scale(pal.stem, 0.8), rng, 0.3)
    _leaf(cv, x, y, side * rng.uniform(0.3, 0.6), inward, colour, rng)


# ---------------------------------------------------------------- camera


def _camera(img: Image.Image, rng: Rng, clutter: float = 1.0) -> np.ndarray:
    """Focus blur, white balance, sensor noise and JPEG: nuisances shared by all classes."""
    if rng.random() < 0.15 * clutter:
        img = _soften(img, rng.uniform(1.2, 1.8))
    # Per-channel gain (white balance) times overall exposure, applied as a lookup table.
    gain = rng.uniform(0.85, 1.15, 3) * rng.uniform(0.8, 1.2)
    ramp = np.arange(256, dtype=np.float64)
    lut = np.clip(np.concatenate([ramp * g for g in gain]), 0, 255).astype(np.uint8)
    img = img.point(lut.tolist())
    # Grey (luminance) noise only: a third of the cost, and JPEG smears chroma anyway.
    sigma = rng.uniform(0.0, 6.0) * clutter
    noise = rng.standard_normal((img.height, img.width, 1), dtype=np.float32) * sigma
    arr = np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=int(rng.integers(50, 92)))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _soften(img: Image.Image, factor: float) -> Image.Image:
    """Blur by shrinking `factor` times and enlarging back: far cheaper than GaussianBlur."""
    small = max(2, round(img.width / factor))
    if small >= img.width:
        return img
    return img.resize((small, small), Image.BOX).resize(img.size, Image.BILINEAR)


# ---------------------------------------------------------------- public API


def render(class_index: int, size: int, rng: np.random.Generator,
           clutter: float = 1.0) -> np.ndarray:
    """One RGB uint8 image of shape (size, size, 3) showing flowers of `class_index`.

    All randomness comes from `rng`, so the same generator state gives the same bytes.
    ``clutter`` scales the nuisances (grass, blobs, occluding leaves, mottling, blur, noise):
    1 is the full set, 0 leaves only the flowers, their colours and the lighting.
    """
    if not 0 <= class_index < len(CLASSES):
        raise ValueError(f"class_index must be in 0..{len(CLASSES) - 1}, got {class_index}")
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    pal = _palette(rng)
    # Clutter is drawn at output size and blurred: background stays softer than subject.
    back = _backdrop(size, pal, rng, clutter)
    _clutter(_Canvas(ImageDraw.Draw(back), size, max(1, size // 160)), pal, rng, clutter)
    back = _soften(back, rng.uniform(1.5, 4.0) if rng.random() < 0.85 else 1.0)
    # Nearest-neighbour enlarging is exact here: the final box reduce gives the pixels back.
    side = size * _SUPERSAMPLE
    canvas = back.resize((side, side), Image.NEAREST)
    cv = _Canvas(ImageDraw.Draw(canvas), side, max(1, round(side / 192)))
    _PAINTERS[class_index](cv, pal, rng)
    _occlude(cv, pal, rng, clutter)
    return _camera(canvas.reduce(_SUPERSAMPLE), rng, clutter)


def examples(count: int, size: int, seed: int,
             clutter: float = 1.0) -> Iterator[tuple[np.ndarray, int]]:
    """`count` images, classes balanced round-robin-shuffled, fully deterministic for a seed.

    Each run of five consecutive images holds every class once, in a shuffled order.
    Image i depends only on (seed, i, size), so a shorter run is a prefix of a longer one.
    """
    if count < 0 or seed < 0:
        raise ValueError("count and seed must be non-negative")
    order = np.arange(len(CLASSES))
    for i in range(count):
        block, pos = divmod(i, len(CLASSES))
        if pos == 0:
            order = np.random.default_rng([seed, block, 1]).permutation(len(CLASSES))
        label = int(order[pos])
        yield render(label, size, np.random.default_rng([seed, i, 0]), clutter), label

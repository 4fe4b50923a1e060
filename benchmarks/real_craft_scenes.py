"""Synthetic text scenes with known word boxes, for localisation metrics on the CRAFT text detector.

Scene ``i`` depends only on ``(seed, i, size)``: a plain background (light or dark) with clutter
(rectangles, ellipses, lines in the background's tone range), two or three words rendered with
Pillow's default font at random sizes and positions (never overlapping), and pixel noise. The
first word is the target; its ink box (tight, measured from the rendered glyphs) is the ground
truth, and the other words are distractors the map should not point at.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SEED = 20261204
WORDS = (
    "TEXT", "hello", "Scene", "CRAFT", "word", "OPEN", "exit", "cafe", "STOP", "data",
    "model", "light", "NORTH", "river", "Paris", "sale", "pixel", "Bank", "HOTEL", "menu",
)
#: Font sizes in pixels at a 128-pixel scene (scaled with the scene size).
FONT_SIZES = (14, 26)
#: Free pixels kept between words and from the border.
GAP = 3


@dataclass(frozen=True)
class Scene:
    """One synthetic scene.

    Attributes
    ----------
    image : numpy.ndarray
        ``(size, size, 3)`` uint8 RGB.
    words : tuple of str
        The rendered words; the first is the target.
    boxes : tuple of tuple of int
        Half-open ink box ``(y0, x0, y1, x1)`` of each word, in image pixels.
    font_sizes : tuple of int
        Font size of each word.
    """

    image: np.ndarray
    words: tuple[str, ...]
    boxes: tuple[tuple[int, int, int, int], ...]
    font_sizes: tuple[int, ...]

    def mask(self) -> np.ndarray:
        """``(size, size)`` bool mask of the target word's box."""
        y0, x0, y1, x1 = self.boxes[0]
        mask = np.zeros(self.image.shape[:2], dtype=bool)
        mask[y0:y1, x0:x1] = True
        return mask

    def score_box(self, stride: int = 2) -> tuple[int, int, int, int]:
        """The target box on an output map ``stride`` times smaller (covering every touched cell)."""
        y0, x0, y1, x1 = self.boxes[0]
        return y0 // stride, x0 // stride, -(-y1 // stride), -(-x1 // stride)


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's default font at ``size`` pixels (its fixed bitmap size on Pillow without ``size=``)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def _background(rng: np.random.Generator, size: int, light: bool) -> Image.Image:
    """Plain tone with 3-8 clutter shapes, all within the background's tone range."""
    low, high = (150, 255) if light else (0, 110)
    base = tuple(int(v) for v in rng.integers(low, high + 1, size=3))
    img = Image.new("RGB", (size, size), base)
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        colour = tuple(int(v) for v in rng.integers(low, high + 1, size=3))
        a, b = rng.integers(0, size, size=(2, 2))
        box = (int(min(a[0], b[0])), int(min(a[1], b[1])), int(max(a[0], b[0])), int(max(a[1], b[1])))
        kind = int(rng.integers(3))
        if kind == 0:
            draw.rectangle(box, fill=colour)
        elif kind == 1:
            draw.ellipse(box, outline=colour, width=int(rng.integers(1, 4)))
        else:
            draw.line((int(a[0]), int(a[1]), int(b[0]), int(b[1])), fill=colour, width=int(rng.integers(1, 4)))
    return img


def _ink_box(
    word: str, typeface: ImageFont.ImageFont, origin: tuple[int, int], size: int
) -> tuple[int, int, int, int] | None:
    """Half-open ``(y0, x0, y1, x1)`` of the glyph pixels of ``word`` drawn at ``origin``; None if cut off."""
    canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(canvas).text(origin, word, fill=255, font=typeface)
    ink = np.asarray(canvas) > 0
    if not ink.any():
        return None
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    box = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
    inside = GAP <= box[0] and GAP <= box[1] and box[2] <= size - GAP and box[3] <= size - GAP
    return box if inside else None


def _overlaps(box: tuple[int, ...], others: list[tuple[int, ...]]) -> bool:
    return any(
        box[0] < o[2] + GAP and o[0] < box[2] + GAP and box[1] < o[3] + GAP and o[1] < box[3] + GAP for o in others
    )


def make_scene(i: int, size: int = 128, seed: int = SEED) -> Scene:
    """Scene ``i`` of the seeded series (see the module docstring)."""
    rng = np.random.default_rng((seed, i, size))
    light = bool(rng.integers(2))
    img = _background(rng, size, light)
    draw = ImageDraw.Draw(img)
    scale = size / 128
    words, boxes, sizes = [], [], []
    for _ in range(int(rng.integers(2, 4))):
        for _attempt in range(50):
            word = WORDS[int(rng.integers(len(WORDS)))]
            points = int(round(rng.integers(FONT_SIZES[0], FONT_SIZES[1] + 1) * scale))
            typeface = font(points)
            origin = (int(rng.integers(0, size)), int(rng.integers(0, size)))
            box = _ink_box(word, typeface, origin, size)
            if box is not None and not _overlaps(box, boxes):
                ink = tuple(int(v) for v in rng.integers(0, 60, size=3)) if light else tuple(
                    int(v) for v in rng.integers(200, 256, size=3))
                draw.text(origin, word, fill=ink, font=typeface)
                words.append(word)
                boxes.append(box)
                sizes.append(points)
                break
    if not boxes:
        raise RuntimeError(f"scene {i}: no word fits a {size}x{size} image")
    noise = rng.normal(0.0, rng.uniform(0.0, 8.0), size=(size, size, 3))
    pixels = np.clip(np.asarray(img, dtype=np.float64) + noise, 0, 255).astype(np.uint8)
    return Scene(pixels, tuple(words), tuple(boxes), tuple(sizes))


def make_scenes(n: int, size: int = 128, seed: int = SEED) -> list[Scene]:
    """The first ``n`` scenes of the seeded series."""
    return [make_scene(i, size, seed) for i in range(n)]

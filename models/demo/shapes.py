"""Deterministic synthetic localisation dataset: one coloured shape on a textured background.

Every image holds exactly one shape of one of :data:`CLASS_NAMES`, at a random position, size,
rotation and colour, over a background cropped from a scikit-image texture (grass, gravel,
brick) or smooth noise, colour-tinted. The ground-truth mask marks the shape's pixels, so a
saliency map can be scored against it (pointing game, mask energy).

Image ``i`` of a split depends only on ``(seed, i)``: ``make_split(n, seed)`` is a prefix of
``make_split(m, seed)`` for ``n < m``, and identical on every machine.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image
from skimage import data as skdata
from skimage.measure import points_in_poly

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring", "star")
SIZE = 64
TRAIN_SEED = 1
TEST_SEED = 20261127
_TEXTURES = ("grass", "gravel", "brick")
_MIN_RADIUS, _MAX_RADIUS = 9.0, 20.0


@lru_cache(maxsize=None)
def _texture(name: str) -> np.ndarray:
    """Return a scikit-image grayscale texture as float32 in [0, 1]."""
    return getattr(skdata, name)().astype(np.float32) / 255.0


def _resize(channel: np.ndarray, size: int) -> np.ndarray:
    """Bilinearly resize a 2-D float array to ``size x size``."""
    img = Image.fromarray(channel.astype(np.float32), mode="F")
    return np.asarray(img.resize((size, size), Image.BILINEAR), dtype=np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A tinted texture crop or smooth colour noise, float32 (size, size, 3) in [0, 1]."""
    kind = rng.integers(len(_TEXTURES) + 1)
    if kind < len(_TEXTURES):
        tex = _texture(_TEXTURES[kind])
        crop = int(rng.integers(size, 3 * size + 1))
        y0, x0 = rng.integers(0, tex.shape[0] - crop + 1, size=2)
        gray = _resize(tex[y0 : y0 + crop, x0 : x0 + crop], size)
        gray = (gray - gray.min()) / max(float(gray.max() - gray.min()), 1e-6)
        dark, light = rng.uniform(0.0, 1.0, size=(2, 3)).astype(np.float32)
        contrast = np.float32(rng.uniform(0.3, 0.8))
        bg = dark + (light - dark) * (0.5 + contrast * (gray[..., None] - 0.5))
    else:
        cells = int(rng.integers(3, 12))
        low = rng.uniform(0.0, 1.0, size=(3, cells, cells))
        bg = np.stack([_resize(c, size) for c in low], axis=-1)
    bg = bg + rng.normal(0.0, 0.03, size=bg.shape).astype(np.float32)
    return np.clip(bg, 0.0, 1.0)


def _polygon(name: str) -> np.ndarray | None:
    """Vertices (k, 2) of a polygonal shape inside the unit disc, or None for round shapes."""
    if name == "square":
        return np.array([[-0.7, -0.7], [0.7, -0.7], [0.7, 0.7], [-0.7, 0.7]])
    if name == "triangle":
        angles = np.deg2rad([90.0, 210.0, 330.0])
        return np.stack([np.cos(angles), np.sin(angles)], axis=1)
    if name == "cross":
        a, b = 0.3, 0.95
        return np.array(
            [[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a],
             [a, b], [-a, b], [-a, a], [-b, a], [-b, -a], [-a, -a]]
        )
    if name == "star":
        angles = np.deg2rad(90.0 + 36.0 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    return None


def shape_mask(name: str, size: int, cy: float, cx: float, radius: float, angle: float) -> np.ndarray:
    """Boolean mask (size, size) of shape ``name`` centred at (cy, cx).

    Parameters
    ----------
    name : str
        One of :data:`CLASS_NAMES`.
    size : int
        Image side in pixels.
    cy, cx : float
        Centre in pixel coordinates (row, column).
    radius : float
        Circumradius in pixels; the shape lies inside this disc.
    angle : float
        Rotation in radians.

    Returns
    -------
    numpy.ndarray
        ``True`` on the shape's pixels (tested at pixel centres).
    """
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = (ys - cy) / radius, (xs - cx) / radius
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    rho2 = u * u + v * v
    if name == "circle":
        return rho2 <= 1.0
    if name == "ring":
        return (rho2 <= 1.0) & (rho2 >= 0.55**2)
    verts = _polygon(name)
    if verts is None:
        raise ValueError(f"unknown shape {name!r}; expected one of {CLASS_NAMES}")
    points = np.stack([u.ravel(), v.ravel()], axis=1)
    return points_in_poly(points, verts).reshape(size, size)


def _shape_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A random colour that stands out from the mean background colour ``under``."""
    for _ in range(64):
        colour = rng.uniform(0.0, 1.0, size=3).astype(np.float32)
        if np.linalg.norm(colour - under) >= 0.45:
            return colour
    return np.where(under > 0.5, 0.0, 1.0).astype(np.float32)


def make_example(seed: int, index: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray, int]:
    """Image ``index`` of the split with ``seed``.

    Returns
    -------
    image : numpy.ndarray
        uint8 (size, size, 3) RGB.
    mask : numpy.ndarray
        bool (size, size), the shape's pixels.
    label : int
        Index into :data:`CLASS_NAMES`.
    """
    rng = np.random.default_rng([seed, index])
    label = int(rng.integers(len(CLASS_NAMES)))
    bg = _background(rng, size)
    scale = size / SIZE
    radius = float(rng.uniform(_MIN_RADIUS, _MAX_RADIUS)) * scale
    cy, cx = rng.uniform(radius, size - 1 - radius, size=2)
    angle = float(rng.uniform(0.0, 2.0 * np.pi))
    mask = shape_mask(CLASS_NAMES[label], size, float(cy), float(cx), radius, angle)
    colour = _shape_colour(rng, bg[mask].mean(axis=0))
    shade = rng.normal(0.0, 0.04, size=(size, size, 1)).astype(np.float32)
    img = np.where(mask[..., None], np.clip(colour + shade, 0.0, 1.0), bg)
    return (img * 255.0 + 0.5).astype(np.uint8), mask, label


def make_split(n: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` examples of the split with ``seed``.

    Parameters
    ----------
    n : int
        Number of images.
    seed : int
        Split seed; image ``i`` depends only on ``(seed, i)``.
    size : int
        Image side in pixels.

    Returns
    -------
    images : numpy.ndarray
        uint8 (n, size, size, 3).
    masks : numpy.ndarray
        bool (n, size, size).
    labels : numpy.ndarray
        int64 (n,).
    """
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        images[i], masks[i], labels[i] = make_example(seed, i, size)
    return images, masks, labels


def train_split(n: int = 8000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training split (seed :data:`TRAIN_SEED`)."""
    return make_split(n, TRAIN_SEED)


def test_split(n: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The held-out test split (seed :data:`TEST_SEED`) used for accuracy and quality benchmarks."""
    return make_split(n, TEST_SEED)

"""Localisation against ground-truth object masks: the pointing game and energy in the mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dmbp_onnx.device import to_numpy
from dmbp_onnx.errors import InputError


@dataclass(frozen=True)
class PointingResult:
    """Outcome of the pointing game.

    Attributes
    ----------
    hits : numpy.ndarray
        ``(N,)`` bool, one per image.
    accuracy : float
        Share of hits.
    distances : numpy.ndarray
        ``(N,)`` distance in pixels from the farthest maximal pixel of the map to the
        nearest object pixel (0 inside the object).
    tolerance : float
        Tolerance in pixels actually used for each image size (see :func:`pointing_game`).
    """

    hits: np.ndarray
    accuracy: float
    distances: np.ndarray
    tolerance: float


def _checked(maps, masks) -> tuple[np.ndarray, np.ndarray]:
    m, g = to_numpy(maps).astype(np.float64), to_numpy(masks)
    if m.ndim != 3 or g.shape != m.shape:
        raise InputError(f"maps and masks must both be (N, H, W); got {m.shape} and {g.shape}")
    if g.dtype != np.bool_:
        raise InputError(f"masks must be boolean; got dtype {g.dtype}")
    if not np.isfinite(m).all():
        raise InputError("maps contain NaN or infinite values")
    empty = np.flatnonzero(~g.reshape(len(g), -1).any(axis=1))
    if len(empty):
        raise InputError(f"object masks of images {empty.tolist()} are empty")
    return m, g


def pointing_game(
    maps: np.ndarray | torch.Tensor,
    gt_masks: np.ndarray | torch.Tensor,
    tolerance_px: float = 15.0,
    reference_size: int = 224,
) -> PointingResult:
    """Pointing game (Zhang et al., 2016): does the map's maximum fall on the object?

    A hit is scored when the maximal pixel of the map lies within a tolerance of the
    object mask (Euclidean distance to the nearest object pixel). The tolerance is
    ``tolerance_px * sqrt(H * W) / reference_size``: 15 px at 224 x 224, scaled with
    the image's side (the geometric mean of height and width). When several pixels
    share the maximum, every one of them must lie within the tolerance, so a flat
    (e.g. all-zero) map does not score by accident.

    Parameters
    ----------
    maps : numpy.ndarray or torch.Tensor
        ``(N, H, W)`` signed per-pixel maps.
    gt_masks : numpy.ndarray or torch.Tensor
        ``(N, H, W)`` bool object masks, none empty.
    tolerance_px : float
        Tolerance in pixels at ``reference_size``.
    reference_size : int
        Image side the tolerance is stated for.
    """
    m, g = _checked(maps, gt_masks)
    h, w = m.shape[1:]
    tolerance = float(tolerance_px) * float(np.sqrt(h * w)) / float(reference_size)
    distances = np.empty(len(m))
    for i in range(len(m)):
        outside = np.argwhere((m[i] == m[i].max()) & ~g[i])
        distances[i] = _farthest_nearest(outside, np.argwhere(_boundary(g[i])))
    hits = distances <= tolerance
    return PointingResult(hits, float(hits.mean()), distances, tolerance)


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Object pixels with a 4-neighbour outside the object (or the image)."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def _farthest_nearest(points: np.ndarray, boundary: np.ndarray, chunk: int = 512) -> float:
    """Largest distance from any of ``points`` (outside the object) to its nearest boundary pixel.

    The nearest object pixel of a point outside the object is a boundary pixel; 0 if no points.
    """
    worst = 0.0
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk, None, :] - boundary[None, :, :]
        nearest = (block * block).sum(axis=2).min(axis=1)
        worst = max(worst, float(np.sqrt(nearest.max())))
    return worst


def energy_in_mask(maps: np.ndarray | torch.Tensor, masks: np.ndarray | torch.Tensor) -> np.ndarray:
    """Share of each map's positive mass that lies inside the object mask.

    Parameters
    ----------
    maps : numpy.ndarray or torch.Tensor
        ``(N, H, W)`` signed per-pixel maps.
    masks : numpy.ndarray or torch.Tensor
        ``(N, H, W)`` bool object masks, none empty.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` values in [0, 1]; NaN for a map with no positive mass.
    """
    m, g = _checked(maps, masks)
    positive = np.maximum(m, 0.0)
    total = positive.reshape(len(m), -1).sum(axis=1)
    inside = (positive * g).reshape(len(m), -1).sum(axis=1)
    out = np.full(len(m), np.nan)
    np.divide(inside, total, out=out, where=total > 0)
    return out

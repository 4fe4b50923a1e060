"""Sensitivity-n (Ancona et al., ICLR 2018): does the map predict the effect of removing pixels?

For a fraction n of the pixels, random subsets S are drawn; for each image the
Pearson correlation across subsets between ``sum(map[S])`` and
``score(x) - score(x with S set to the baseline)`` is computed, then averaged
over images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from dmbp_onnx.errors import InputError
from dmbp_onnx.metrics._perturb import (
    Baseline,
    ScoreFn,
    as_maps,
    original_scores,
    resolve_baseline,
    score_masked,
    spatial_shape,
)


@dataclass(frozen=True)
class SensitivityN:
    """Sensitivity-n at one fraction.

    Attributes
    ----------
    fraction : float
        Share of the pixels (or of the patches) in each subset.
    mean : float
        Mean of the per-image correlations that are defined (NaN if none is).
    per_image : numpy.ndarray
        ``(N,)`` Pearson correlation per image; NaN where it is undefined because the
        map sums or the score drops are constant across the subsets.
    n_undefined : int
        Number of images with an undefined (NaN) correlation, left out of ``mean``.
    subset_size : int
        Pixels (or patches) per subset.
    """

    fraction: float
    mean: float
    per_image: np.ndarray
    n_undefined: int
    subset_size: int


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two vectors; NaN when either is constant."""
    da, db = a - a.mean(), b - b.mean()
    na, nb = np.sqrt((da * da).sum()), np.sqrt((db * db).sum())
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), 1e-300)
    if na <= 1e-12 * scale * np.sqrt(len(a)) or nb <= 1e-12 * scale * np.sqrt(len(b)):
        return float("nan")
    return float(np.clip((da * db).sum() / (na * nb), -1.0, 1.0))


def _units(hw: tuple[int, int], patch: int | None) -> np.ndarray:
    """Label of the unit (pixel, or patch x patch block) each pixel belongs to."""
    h, w = hw
    if patch is None:
        return np.arange(h * w).reshape(h, w)
    if patch < 1:
        raise InputError(f"patch must be a positive number of pixels; got {patch}")
    blocks_w = -(-w // patch)
    rows, cols = np.meshgrid(np.arange(h) // patch, np.arange(w) // patch, indexing="ij")
    return rows * blocks_w + cols


def sensitivity_n(
    score_fn: ScoreFn,
    x: torch.Tensor,
    maps: np.ndarray | torch.Tensor,
    fractions: Sequence[float] = (0.01, 0.05, 0.1, 0.2, 0.5),
    n_subsets: int = 100,
    baseline: Baseline = 0.0,
    patch: int | None = None,
    channel_axis: int | None = 1,
    batch_size: int = 64,
    seed: int = 0,
    blur_sigma: float = 5.0,
) -> dict[float, SensitivityN]:
    """Sensitivity-n of per-pixel signed maps.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x, index) -> (B,)``, e.g. from :func:`target_scorer`.
    x : torch.Tensor
        ``(N, ...)`` images in the model's layout, on the device the perturbed inputs are built on.
    maps : numpy.ndarray or torch.Tensor
        ``(N, H, W)`` signed per-pixel maps (attribution summed over channels).
    fractions : sequence of float
        Shares n in (0, 1] of the units removed per subset.
    n_subsets : int
        Random subsets drawn per image and fraction (at least 2).
    baseline : float, str or torch.Tensor
        Value the removed pixels take (see :func:`resolve_baseline`); 0 by default.
    patch : int or None
        None: subsets of pixels. An int p: subsets of p x p blocks (edge blocks may be smaller),
        with n the share of blocks.
    channel_axis : int or None
        1 for NCHW, -1 for NHWC, None for ``(N, H, W)`` inputs.
    batch_size : int
        Perturbed inputs per call of ``score_fn``.
    seed : int
        Subsets of image i and fraction k come from ``numpy.random.default_rng((seed, i, k))``.
    blur_sigma : float
        Blur width in pixels for ``baseline="blur"``.

    Returns
    -------
    dict of float to SensitivityN
        One entry per fraction.
    """
    if n_subsets < 2:
        raise InputError(f"n_subsets must be at least 2 to correlate; got {n_subsets}")
    hw = spatial_shape(x, channel_axis)
    n = int(x.shape[0])
    pixel_maps = as_maps(maps, n, hw)
    base = resolve_baseline(x, baseline, channel_axis, blur_sigma)
    units = _units(hw, patch)
    n_units = int(units.max()) + 1
    scores = original_scores(score_fn, x, channel_axis, batch_size)
    unit_sums = np.stack(
        [np.bincount(units.ravel(), weights=m.ravel(), minlength=n_units) for m in pixel_maps]
    )

    result: dict[float, SensitivityN] = {}
    for k, fraction in enumerate(fractions):
        if not 0 < fraction <= 1:
            raise InputError(f"fractions must lie in (0, 1]; got {fraction}")
        size = max(1, int(round(fraction * n_units)))
        map_sums = np.empty((n, n_subsets))
        blocks = _subset_masks(units, unit_sums, size, n_subsets, (seed, k), map_sums)
        perturbed = score_masked(score_fn, base, x, blocks, channel_axis, batch_size)
        drops = scores[:, None] - perturbed.reshape(n, n_subsets)
        per_image = np.array([pearson(map_sums[i], drops[i]) for i in range(n)])
        undefined = int(np.isnan(per_image).sum())
        mean = float(np.nanmean(per_image)) if undefined < n else float("nan")
        result[float(fraction)] = SensitivityN(float(fraction), mean, per_image, undefined, size)
    return result


def _subset_masks(
    units: np.ndarray,
    unit_sums: np.ndarray,
    size: int,
    n_subsets: int,
    key: tuple[int, int],
    map_sums: np.ndarray,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(i, pixel masks)`` of image i's random subsets; write their map sums to ``map_sums[i]``.

    Each subset holds ``size`` units drawn uniformly without replacement by
    ``numpy.random.default_rng((seed, i, k))``, so an image's subsets do not depend on the batch.
    """
    n_units = unit_sums.shape[1]
    for i in range(unit_sums.shape[0]):
        rng = np.random.default_rng((key[0], i, key[1]))
        chosen = np.zeros((n_subsets, n_units), dtype=bool)
        for row in chosen:
            row[rng.choice(n_units, size, replace=False)] = True
        map_sums[i] = chosen @ unit_sums[i]
        yield i, chosen[:, units]

"""Deletion and insertion curves (Petsiuk et al., BMVC 2018).

Pixels are ranked by the map, most important (largest signed value) first.
*Deletion* replaces them, in steps, by a baseline and follows the score down;
*insertion* starts from the baseline and puts them back. A faithful map gives a
low deletion AUC and a high insertion AUC.

The **headline is the raw AUC** of the target score (a logit) over the removed /
inserted fraction in [0, 1]: it is defined for every image, and methods are
compared on the same images and model, so they share each image's score scale.
The AUC of ``score / score(x)`` is reported beside it; it is scale-free but only
defined where ``score(x) > 0`` (NaN elsewhere, counted in ``n_undefined``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

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
class CurveResult:
    """Deletion or insertion curves and their areas.

    Attributes
    ----------
    fractions : numpy.ndarray
        ``(K + 1,)`` share of pixels removed (deletion) or inserted (insertion), from 0 to 1.
    curves : numpy.ndarray
        ``(N, K + 1)`` target score at each fraction.
    auc : numpy.ndarray
        ``(N,)`` trapezoid area under ``curves`` over ``fractions`` (the headline).
    auc_normalised : numpy.ndarray
        ``(N,)`` area under ``curves / score(x)``; NaN where ``score(x) <= 0``.
    score_original : numpy.ndarray
        ``(N,)`` score of the unperturbed images.
    n_undefined : int
        Images whose normalised AUC is NaN.
    """

    fractions: np.ndarray
    curves: np.ndarray
    auc: np.ndarray
    auc_normalised: np.ndarray
    score_original: np.ndarray
    n_undefined: int

    @property
    def mean_auc(self) -> float:
        """Mean raw AUC over the images."""
        return float(self.auc.mean())


def deletion_auc(
    score_fn: ScoreFn,
    x: torch.Tensor,
    maps: np.ndarray | torch.Tensor,
    step: float = 0.02,
    baseline: Baseline = "zero",
    blur_sigma: float = 5.0,
    channel_axis: int | None = 1,
    batch_size: int = 64,
) -> CurveResult:
    """Deletion curve: remove the most important pixels first, replacing them by the baseline.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x, index) -> (B,)``, e.g. from :func:`target_scorer`.
    x : torch.Tensor
        ``(N, ...)`` images in the model's layout.
    maps : numpy.ndarray or torch.Tensor
        ``(N, H, W)`` signed per-pixel maps; ties are broken in raster order.
    step : float
        Share of the pixels removed per step.
    baseline : float, str or torch.Tensor
        ``"zero"`` (default), ``"mean"``, ``"blur"``, a constant or a tensor (see
        :func:`resolve_baseline`).
    blur_sigma : float
        Blur width in pixels for ``baseline="blur"``.
    channel_axis : int or None
        1 for NCHW, -1 for NHWC, None for ``(N, H, W)`` inputs.
    batch_size : int
        Perturbed inputs per call of ``score_fn``.
    """
    return _curves(score_fn, x, maps, step, baseline, blur_sigma, channel_axis, batch_size, insert=False)


def insertion_auc(
    score_fn: ScoreFn,
    x: torch.Tensor,
    maps: np.ndarray | torch.Tensor,
    step: float = 0.02,
    baseline: Baseline = "blur",
    blur_sigma: float = 5.0,
    channel_axis: int | None = 1,
    batch_size: int = 64,
) -> CurveResult:
    """Insertion curve: start from the baseline (a blurred image by default) and insert the
    most important pixels first.

    Parameters are those of :func:`deletion_auc`; the default baseline is ``"blur"``
    (Petsiuk et al.).
    """
    return _curves(score_fn, x, maps, step, baseline, blur_sigma, channel_axis, batch_size, insert=True)


def _curves(
    score_fn: ScoreFn,
    x: torch.Tensor,
    maps: np.ndarray | torch.Tensor,
    step: float,
    baseline: Baseline,
    blur_sigma: float,
    channel_axis: int | None,
    batch_size: int,
    insert: bool,
) -> CurveResult:
    if not 0 < step <= 1:
        raise InputError(f"step must lie in (0, 1]; got {step}")
    hw = spatial_shape(x, channel_axis)
    n = int(x.shape[0])
    pixel_maps = as_maps(maps, n, hw)
    base = resolve_baseline(x, baseline, channel_axis, blur_sigma)
    n_steps = math.ceil(1 / step - 1e-9)
    fractions = np.minimum(np.arange(n_steps + 1) * step, 1.0)
    counts = np.rint(fractions * hw[0] * hw[1]).astype(np.int64)
    fill, background = (x, base) if insert else (base, x)
    blocks = _ranked_masks(pixel_maps, counts)
    curves = score_masked(score_fn, fill, background, blocks, channel_axis, batch_size)
    curves = curves.reshape(n, n_steps + 1)
    scores = original_scores(score_fn, x, channel_axis, batch_size)
    positive = scores > 0
    normalised = np.full_like(curves, np.nan)
    normalised[positive] = curves[positive] / scores[positive, None]
    return CurveResult(
        fractions=fractions,
        curves=curves,
        auc=_trapezoid(curves, fractions),
        auc_normalised=_trapezoid(normalised, fractions),
        score_original=scores,
        n_undefined=int((~positive).sum()),
    )


def _ranked_masks(pixel_maps: np.ndarray, counts: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(i, masks)``: mask k holds image i's ``counts[k]`` highest-ranked pixels."""
    for i, pixel_map in enumerate(pixel_maps):
        flat = pixel_map.ravel()
        order = np.argsort(-flat, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(flat.size)
        yield i, (rank[None, :] < counts[:, None]).reshape(len(counts), *pixel_map.shape)


def _trapezoid(curves: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Trapezoid area under each row of ``curves`` over ``fractions``."""
    widths = np.diff(fractions)
    return ((curves[:, 1:] + curves[:, :-1]) * 0.5 * widths).sum(axis=1)

"""Shared machinery of the perturbation metrics: layouts, baselines, batched scoring.

A *score function* has the contract ``score_fn(x, index) -> (B,)``: ``x`` is a
batch of (perturbed) inputs in the model's own layout and ``index`` (a ``long``
tensor of shape ``(B,)`` on ``x``'s device) says which of the caller's ``N``
images each row derives from, so the function can pick that image's target.
:func:`dmbp_onnx.metrics.target_scorer` builds one from a :class:`~dmbp_onnx.Twin`.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from dmbp_onnx.device import to_numpy
from dmbp_onnx.errors import InputError

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Baseline = float | str | torch.Tensor


def spatial_shape(x: torch.Tensor, channel_axis: int | None) -> tuple[int, int]:
    """``(H, W)`` of a batch ``x`` in NCHW (``channel_axis=1``), NHWC (-1 or 3) or NHW (None).

    Raises
    ------
    InputError
        ``x`` is not a batch of 2-D images with the given channel axis.
    """
    if channel_axis is None:
        if x.ndim != 3:
            raise InputError(f"without a channel axis x must be (N, H, W); got shape {tuple(x.shape)}")
        return int(x.shape[1]), int(x.shape[2])
    if x.ndim != 4:
        raise InputError(f"x must be a 4-D image batch; got shape {tuple(x.shape)}")
    axis = channel_axis % 4
    if axis == 1:
        return int(x.shape[2]), int(x.shape[3])
    if axis == 3:
        return int(x.shape[1]), int(x.shape[2])
    raise InputError(f"channel_axis must be 1 (NCHW) or -1 (NHWC); got {channel_axis}")


def expand_mask(mask: torch.Tensor, channel_axis: int | None) -> torch.Tensor:
    """Insert the channel axis into a ``(B, H, W)`` pixel mask so it broadcasts over ``x``."""
    if channel_axis is None:
        return mask
    return mask.unsqueeze(channel_axis % 4)


def as_maps(maps: np.ndarray | torch.Tensor, n: int, hw: tuple[int, int]) -> np.ndarray:
    """Per-pixel maps as a float64 numpy array of shape ``(n, H, W)``, checked."""
    array = to_numpy(maps)
    if array.shape != (n, *hw):
        raise InputError(
            f"maps must have shape (N, H, W) = {(n, *hw)} (sum attributions over channels first); "
            f"got {array.shape}"
        )
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise InputError("maps contain NaN or infinite values")
    return array


def gaussian_blur(x: torch.Tensor, sigma: float, channel_axis: int | None) -> torch.Tensor:
    """Separable Gaussian blur of each channel (kernel radius ceil(3 sigma), replicate padding)."""
    if sigma <= 0:
        raise InputError(f"blur_sigma must be positive; got {sigma}")
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(x.dtype)
    if channel_axis is None:
        planes = x.unsqueeze(1)
    elif channel_axis % 4 == 1:
        planes = x
    else:
        planes = x.permute(0, 3, 1, 2)
    n, c, h, w = planes.shape
    flat = planes.reshape(n * c, 1, h, w)
    flat = F.pad(flat, (radius, radius, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    blurred = flat.reshape(n, c, h, w)
    if channel_axis is None:
        return blurred.squeeze(1)
    if channel_axis % 4 == 1:
        return blurred
    return blurred.permute(0, 2, 3, 1).contiguous()


def resolve_baseline(
    x: torch.Tensor, baseline: Baseline, channel_axis: int | None, blur_sigma: float = 5.0
) -> torch.Tensor:
    """The reference input, one per image, with ``x``'s shape, dtype and device.

    Parameters
    ----------
    x : torch.Tensor
        The images, ``(N, ...)``.
    baseline : float, str or torch.Tensor
        A constant; ``"zero"``; ``"mean"`` (each image's per-channel mean over its pixels);
        ``"blur"`` (the image blurred with a Gaussian of ``blur_sigma`` pixels); or a tensor
        broadcastable to ``x`` (e.g. one image, or one per image).
    channel_axis : int or None
        Channel axis of ``x``.
    blur_sigma : float
        Standard deviation of the blur in pixels.
    """
    if isinstance(baseline, torch.Tensor):
        try:
            return torch.broadcast_to(baseline.to(device=x.device, dtype=x.dtype), x.shape).clone()
        except RuntimeError as exc:
            raise InputError(
                f"baseline of shape {tuple(baseline.shape)} does not broadcast to x {tuple(x.shape)}"
            ) from exc
    if isinstance(baseline, str):
        if baseline == "zero":
            return torch.zeros_like(x)
        if baseline == "mean":
            if channel_axis is None:
                dims: tuple[int, ...] = (1, 2)
            else:
                dims = (2, 3) if channel_axis % 4 == 1 else (1, 2)
            return x.mean(dim=dims, keepdim=True).expand_as(x).clone()
        if baseline == "blur":
            return gaussian_blur(x, blur_sigma, channel_axis)
        raise InputError(f"baseline must be 'zero', 'mean', 'blur', a number or a tensor; got {baseline!r}")
    return torch.full_like(x, float(baseline))


def score_masked(
    score_fn: ScoreFn,
    fill: torch.Tensor,
    background: torch.Tensor,
    blocks: Iterable[tuple[int, np.ndarray]],
    channel_axis: int | None,
    batch_size: int,
) -> np.ndarray:
    """Score ``where(mask, fill[i], background[i])`` for every mask, many per forward call.

    Parameters
    ----------
    score_fn : callable
        ``score_fn(x, index) -> (B,)``.
    fill, background : torch.Tensor
        ``(N, ...)`` tensors: masked pixels come from ``fill``, the others from ``background``.
    blocks : iterable of (int, numpy.ndarray)
        ``(image index, masks (m, H, W) bool)``, consumed lazily in order.
    channel_axis : int or None
        Channel axis of the inputs.
    batch_size : int
        Perturbed inputs per call of ``score_fn``.

    Returns
    -------
    numpy.ndarray
        float64 scores, one per mask, in order.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1; got {batch_size}")
    results: list[np.ndarray] = []
    for index, masks in _chunks(blocks, batch_size):
        rows = torch.from_numpy(index).to(fill.device)
        mask = expand_mask(torch.from_numpy(masks).to(fill.device), channel_axis)
        with torch.no_grad():
            batch = torch.where(mask, fill[rows], background[rows])
            scores = score_fn(batch, rows)
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (len(index),):
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise InputError(f"score_fn must return one score per input, shape ({len(index)},); got {shape}")
        results.append(scores.detach().to(torch.float64).cpu().numpy())
    return np.concatenate(results) if results else np.zeros(0)


def _chunks(
    blocks: Iterable[tuple[int, np.ndarray]], batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Regroup ``(image, masks)`` blocks into ``(indices, masks)`` chunks of ``batch_size`` rows."""
    pending_idx: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    count = 0
    for image, masks in blocks:
        start = 0
        while start < len(masks):
            take = min(batch_size - count, len(masks) - start)
            pending.append(masks[start : start + take])
            pending_idx.append(np.full(take, image, dtype=np.int64))
            count += take
            start += take
            if count == batch_size:
                yield np.concatenate(pending_idx), np.concatenate(pending)
                pending_idx, pending, count = [], [], 0
    if count:
        yield np.concatenate(pending_idx), np.concatenate(pending)


def original_scores(
    score_fn: ScoreFn, x: torch.Tensor, channel_axis: int | None, batch_size: int
) -> np.ndarray:
    """``score_fn`` on the unperturbed images, chunked by ``batch_size``."""
    n = x.shape[0]
    hw = spatial_shape(x, channel_axis)
    blocks = ((i, np.zeros((1, *hw), dtype=bool)) for i in range(n))
    return score_masked(score_fn, x, x, blocks, channel_axis, batch_size)

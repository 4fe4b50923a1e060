"""Score functions for the metrics: the target logit of each (perturbed) image."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from dmbp_onnx.errors import InputError
from dmbp_onnx.metrics._perturb import ScoreFn


def target_scorer(twin, targets: Sequence[int] | np.ndarray | torch.Tensor) -> ScoreFn:
    """A score function returning ``twin(x)[row, targets[index[row]]]``.

    The twin's first output (logits, before a split-off softmax) must hold one score
    vector per image: shape ``(B, K)``, or one with extra size-1 axes such as
    ``(B, K, 1, 1)`` from a final 1x1-output convolution, which is flattened.

    Parameters
    ----------
    twin : dmbp_onnx.Twin
        The model. Inputs are moved to its device.
    targets : sequence of int
        Target class of each of the caller's ``N`` images.

    Returns
    -------
    callable
        ``score_fn(x, index) -> (B,)``, evaluated under ``torch.no_grad``; ``index``
        says which image each row of ``x`` derives from.
    """
    target = torch.as_tensor(np.asarray(targets), dtype=torch.long).reshape(-1)

    def score_fn(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        device = twin.device
        with torch.no_grad():
            out = twin(x.to(device))
        if out.ndim < 2 or sum(int(d) > 1 for d in out.shape[1:]) > 1:
            raise InputError(
                "target_scorer needs one score vector per image; "
                f"the twin's output has shape {tuple(out.shape)}"
            )
        logits = out.reshape(out.shape[0], -1)
        rows = index.to(device=device, dtype=torch.long)
        if rows.numel() and int(rows.max()) >= len(target):
            raise InputError(f"image index {int(rows.max())} has no target ({len(target)} targets given)")
        chosen = target.to(device)[rows]
        if chosen.numel() and (int(chosen.min()) < 0 or int(chosen.max()) >= logits.shape[1]):
            raise InputError(f"targets must lie in [0, {logits.shape[1]}); got {chosen.tolist()}")
        return logits[torch.arange(len(rows), device=device), chosen]

    return score_fn


def selector_scorer(twin, selectors: torch.Tensor) -> ScoreFn:
    """A score function returning ``sum(twin(x)[row] * selectors[index[row]])``.

    The explained score of any target kind (class, :class:`~dmbp_onnx.methods.target.BoxTarget`,
    :class:`~dmbp_onnx.methods.target.RegionTarget`): the same contraction of the output
    that the methods' backward pass starts from.

    Parameters
    ----------
    twin : dmbp_onnx.Twin
        The model. Inputs are moved to its device.
    selectors : torch.Tensor
        ``(N, ...)`` one selector per image, shaped like the twin's first output (from
        :func:`~dmbp_onnx.methods.target.resolve_targets`).

    Returns
    -------
    callable
        ``score_fn(x, index) -> (B,)``, evaluated under ``torch.no_grad``.
    """

    def score_fn(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        device = twin.device
        with torch.no_grad():
            out = twin(x.to(device))
        if tuple(out.shape[1:]) != tuple(selectors.shape[1:]):
            raise InputError(f"the twin's output has shape {tuple(out.shape)}; the targets need {tuple(selectors.shape)}")
        rows = index.to(device=device, dtype=torch.long)
        chosen = selectors.to(device=device, dtype=out.dtype)[rows]
        return (out * chosen).reshape(out.shape[0], -1).sum(1)

    return score_fn

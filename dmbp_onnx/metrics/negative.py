"""How much of a map is evidence against the target: the negative map's share of the mass."""

from __future__ import annotations

import numpy as np

#: A negative map holding less than this share of the total mass counts as empty (DMBP's property).
EMPTY_SHARE = 0.01
#: A model "has negative evidence" on an image where Gradient x Input's negative share reaches this.
EVIDENCE_SHARE = 0.10


def negative_share(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """``(N,)``: ``sum |negative| / (sum |positive| + sum |negative|)`` per image.

    Parameters
    ----------
    positive, negative : numpy.ndarray
        ``(N, ...)`` per-pixel maps (channel-summed) of the evidence for and against the target;
        for a signed map ``a`` pass ``relu(a)`` and ``-relu(-a)``.
    """
    pos = np.abs(positive.reshape(len(positive), -1)).sum(1)
    neg = np.abs(negative.reshape(len(negative), -1)).sum(1)
    return neg / np.maximum(pos + neg, 1e-30)


def signed_negative_share(signed: np.ndarray) -> np.ndarray:
    """``(N,)``: the negative share of a signed per-pixel map (see :func:`negative_share`)."""
    return negative_share(np.clip(signed, 0, None), np.clip(signed, None, 0))


def empty_negative_maps(share: np.ndarray, reference_share: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: images whose negative map is empty (share below :data:`EMPTY_SHARE`) although
    the reference map (Gradient x Input) puts at least :data:`EVIDENCE_SHARE` of its mass against
    the target — the failure DMBP's defaults must never show."""
    return (np.asarray(share) < EMPTY_SHARE) & (np.asarray(reference_share) >= EVIDENCE_SHARE)

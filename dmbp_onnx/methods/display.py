"""Display maps in [-1, 1] from a positive and a negative pixel map (docs/method.md §5)."""

from __future__ import annotations

import numpy as np

RECIPES = ("clip", "authors")


def _flat(a: np.ndarray) -> np.ndarray:
    return a.reshape(a.shape[0], -1)


def _common_scale(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per image, the largest value of ``p`` and ``q`` (1 where both are zero), broadcastable."""
    top = np.maximum(_flat(p).max(1), _flat(q).max(1))
    top = np.where(top > 0, top, 1.0)
    return top.reshape((-1,) + (1,) * (p.ndim - 1))


#: Percentile of the pooled values of ``relu(P)`` and ``relu(Q)`` that the default display
#: maps to full colour (ours, chosen by eye on the demo images, docs/method.md; the authors clip at
#: 99.99 and min-shift, see :func:`authors_display`).
DISPLAY_PERCENTILE = 98.0


def clip_display(p: np.ndarray, q: np.ndarray, percentile: float = DISPLAY_PERCENTILE) -> np.ndarray:
    """``relu(P) - relu(Q)`` over a common per-image scale, clipped to [-1, 1] (the default display).

    The scale is the ``percentile``-th percentile of the pooled values of ``relu(P)`` and
    ``relu(Q)`` (their largest value when that percentile is 0, 1 when both are empty), so a
    few hot pixels saturate instead of washing out the rest of the map; ``percentile=100``
    divides by the common maximum.

    Parameters
    ----------
    p, q : np.ndarray
        ``(N, *spatial)``: P = channel mean of A+, Q = minus the channel mean of A-.
    percentile : float
        In (0, 100].
    """
    p, q = np.maximum(p, 0.0), np.maximum(q, 0.0)
    pooled = np.concatenate([_flat(p), _flat(q)], axis=1)
    scale = np.percentile(pooled, percentile, axis=1)
    top = pooled.max(1)
    scale = np.where(scale > 0, scale, np.where(top > 0, top, 1.0)).reshape((-1,) + (1,) * (p.ndim - 1))
    return np.clip((p - q) / scale, -1.0, 1.0)


def _authors_prepare(a: np.ndarray) -> np.ndarray:
    flat = _flat(a)
    limit = np.percentile(np.abs(flat), 99.99, axis=1).reshape((-1,) + (1,) * (a.ndim - 1))
    a = np.clip(a, -limit, limit)
    return a - _flat(a).min(1).reshape((-1,) + (1,) * (a.ndim - 1))


def authors_display(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The authors' recipe: clip each map at the 99.99th percentile of |values|, shift its minimum
    to 0, divide both by their common maximum, return ``P - Q``.

    Parameters
    ----------
    p, q : np.ndarray
        ``(N, *spatial)``: P = channel mean of A+, Q = minus the channel mean of A-.
    """
    p, q = _authors_prepare(p), _authors_prepare(q)
    return (p - q) / _common_scale(p, q)

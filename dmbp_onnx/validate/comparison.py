"""Allclose-style comparison of arrays, per output and as top-1 agreement."""

from __future__ import annotations

import math

import numpy as np

_TINY = 1e-12


def compare(got: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> dict:
    """Element-wise ``|got - ref| <= atol + rtol * |ref|``; NaNs at the same places count as equal.

    Returns
    -------
    dict
        ``ok``, ``max_abs``, ``max_rel`` (``|got - ref| / (|ref| + tiny)``) and ``mismatched``
        (number of elements out of tolerance); ``max_abs = inf`` when the shapes differ.
    """
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape:
        return {"ok": False, "max_abs": math.inf, "max_rel": math.inf, "mismatched": int(ref.size)}
    a, b = got.astype(np.float64), ref.astype(np.float64)
    close = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), math.inf, diff)
        rel = np.where(np.isfinite(diff), diff / (np.abs(b) + _TINY), math.inf)
        rel = np.where(same, 0.0, rel)
    return {
        "ok": bool(close.all()),
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "max_rel": float(rel.max()) if rel.size else 0.0,
        "mismatched": int((~close).sum()),
    }


def _top1(got: np.ndarray, ref: np.ndarray) -> float | None:
    if got.shape != ref.shape or ref.ndim != 2 or ref.shape[1] < 2 or ref.shape[0] == 0:
        return None
    if not np.issubdtype(ref.dtype, np.floating):
        return None
    return float(np.mean(np.argmax(got, axis=1) == np.argmax(ref, axis=1)))


def _largest(outputs: list[dict], key: str) -> float | None:
    values = [o[key] for o in outputs if key in o]
    return max(values) if values else None


def _output_entries(
    names: list[str],
    got: list[np.ndarray],
    reference: list[np.ndarray],
    expected: list[np.ndarray] | None,
    rtol: float,
    atol: float,
) -> list[dict]:
    """Per-output comparison of the twin with onnxruntime (and both with ``expected``)."""
    entries = []
    for k, (name, ref) in enumerate(zip(names, reference)):
        entry = {"name": name, "shape": list(ref.shape), **compare(got[k], ref, rtol, atol)}
        if expected is not None:
            mine = compare(got[k], expected[k], rtol, atol)
            theirs = compare(ref, expected[k], rtol, atol)
            entry["expected_ok"] = mine["ok"] and theirs["ok"]
            entry["expected_max_abs"] = mine["max_abs"]
            entry["ort_vs_expected_max_abs"] = theirs["max_abs"]
        entries.append(entry)
    return entries

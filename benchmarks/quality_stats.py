"""Intervals, paired comparisons and Markdown tables of the quality benchmarks' per-image metrics.

Every result of ``benchmarks/quality.py`` stores, per method, ``per_image``: metric name ->
one value per image (a JSON list, NaN as null), in the same image order for every method of a
section. From these, :func:`annotate` derives each method's ``summary`` (mean and 95 % bootstrap
interval per metric) and the section's ``paired`` differences "A − B" (mean of the per-image
differences and its interval), so results of separate runs on the same images pair exactly.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from dmbp_onnx.metrics import Interval, bootstrap_mean, paired_difference

#: Digits kept for per-image values in the results JSON.
DIGITS = 5


def to_list(values) -> list[float | None]:
    """Per-image values as a JSON-safe list: floats rounded to :data:`DIGITS`, NaN as None."""
    return [round(float(v), DIGITS) if math.isfinite(float(v)) else None for v in np.asarray(values).ravel()]


def from_list(values: Sequence[float | None]) -> np.ndarray:
    """A JSON list of per-image values back as a float array (None as NaN)."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def interval(values: Sequence[float | None]) -> Interval:
    """Mean of one metric's per-image values with its 95 % bootstrap interval."""
    return bootstrap_mean(from_list(values))


def difference(a: Sequence[float | None], b: Sequence[float | None]) -> Interval:
    """Paired difference ``a - b`` of one metric over the same images, with its interval."""
    return paired_difference(from_list(a), from_list(b))


def annotate(results: dict[str, dict], pairs: Iterable[tuple[str, str]]) -> dict[str, dict]:
    """Add each result's ``summary`` and return the paired differences of ``pairs``.

    Parameters
    ----------
    results : dict
        Method name -> result holding ``per_image`` (metric -> list); results without
        ``per_image`` (a method that failed on the model) are left alone.
    pairs : iterable of (str, str)
        ``(a, b)`` method names; a pair is compared on every metric both hold.

    Returns
    -------
    dict
        ``"a − b"`` -> metric -> ``Interval.as_dict()``.
    """
    for result in results.values():
        if "per_image" in result:
            result["summary"] = {k: interval(v).as_dict() for k, v in result["per_image"].items()}
    paired: dict[str, dict] = {}
    for a, b in pairs:
        pa, pb = results[a].get("per_image"), results[b].get("per_image")
        if pa is None or pb is None:
            continue
        paired[f"{a} − {b}"] = {k: difference(pa[k], pb[k]).as_dict() for k in pa if k in pb}
    return paired


def cell(summary: dict | None) -> str:
    """``"mean [low, high]"`` of an ``Interval.as_dict()`` (``"n/a"`` when missing)."""
    if summary is None:
        return ""

    def value(key: str) -> float:
        v = summary.get(key)
        return float("nan") if v is None else float(v)

    return str(Interval(value("mean"), value("low"), value("high"), int(summary.get("n", 0))))


def column_label(metric: str) -> str:
    """Table heading of a metric key, e.g. ``sens_4x4_0.05`` -> ``sens 4x4 5 %``."""
    if metric.startswith("sens_"):
        _, unit, fraction = metric.split("_")
        return f"sens {unit} {float(fraction) * 100:g} %"
    return {"deletion": "deletion (lower)", "insertion": "insertion (higher)"}.get(metric, metric.replace("_", " "))


def table(rows: dict[str, dict], metrics: Sequence[str], first: str, extra: dict[str, str] | None = None) -> list[str]:
    """Markdown table: one row per entry of ``rows`` (name -> metric -> interval dict).

    Parameters
    ----------
    rows : dict
        Row label -> metric -> ``Interval.as_dict()``.
    metrics : sequence of str
        Metric keys, one column each, in order.
    first : str
        Heading of the label column.
    extra : dict, optional
        Heading of a plain-text column -> the key holding its text in each row.
    """
    heads = [first, *(column_label(m) for m in metrics), *(extra or {})]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for label, values in rows.items():
        cells = [label, *(cell(values.get(m)) for m in metrics)]
        cells += [str(values.get(key, "")) for key in (extra or {}).values()]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def method_table(results: dict[str, dict], metrics: Sequence[str], labels: dict[str, str]) -> list[str]:
    """Means with intervals, one row per method, plus seconds per image (and collapsed maps, if any).

    A method that failed on the model (``error`` in its result) gets one row stating the error.
    """
    rows: dict[str, dict] = {}
    errors: list[str] = []
    for name, r in results.items():
        label = labels.get(name, name)
        if "error" in r:
            errors.append(f"{label}: failed ({r['error']})")
            continue
        rows[label] = {**r.get("summary", {}), "_seconds": r.get("attribute_s_per_image", ""),
                       "_collapsed": r.get("collapsed", "")}
    lines = table(rows, metrics, "method", {"s / image": "_seconds", "collapsed": "_collapsed"})
    return lines + ([""] + [f"* {e}" for e in errors] if errors else [])


def paired_table(paired: dict[str, dict], metrics: Sequence[str], labels: dict[str, str]) -> list[str]:
    """Paired per-image differences "A − B" with intervals (an interval above 0: A higher on those images)."""
    rows = {" − ".join(labels.get(p, p) for p in key.split(" − ")): v for key, v in paired.items()}
    return table(rows, metrics, "difference (same images)")

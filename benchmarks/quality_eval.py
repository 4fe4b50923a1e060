"""Per-image metrics of one attribution method, shared by every stage of ``benchmarks/quality.py``.

A :class:`Protocol` names the metrics of a section; :func:`run_method` attributes, times and
evaluates one method and returns per-image arrays (JSON lists) for pairing. Score functions are
wrapped in a :class:`CachedScorer`: the perturbed inputs of sensitivity-n (and the ends of the
deletion and insertion curves) do not depend on the map, so every method after the first reuses
their forward passes — on a VGG16 that is most of the metric time. With a cache file (``--score-cache``)
that holds across runs too, so rows run separately (``--methods``) pay for them once.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from dmbp_onnx import metrics
from dmbp_onnx.errors import DmbpOnnxError
from dmbp_onnx.methods import BoxTarget
from quality_stats import to_list

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class CachedScorer:
    """Memoise a score function ``score_fn(x, index) -> (B,)`` per (image index, input bytes).

    Parameters
    ----------
    score_fn : callable
        The metric score function (e.g. :func:`dmbp_onnx.metrics.target_scorer`).
    path : Path, optional
        ``.npz`` file the cache is read from (when it exists) and written to by :meth:`save`, so
        later runs on the same model, images and targets skip the shared forward passes; the
        caller names it after everything the scores depend on (see :func:`cache_file`).

    Attributes
    ----------
    forwards : int
        Inputs actually scored (the cache misses).
    requests : int
        Inputs asked for.
    """

    def __init__(self, score_fn: ScoreFn, path: Path | None = None) -> None:
        self.score_fn = score_fn
        self.path = path
        self.cache: dict[tuple[int, bytes], float] = {}
        self.forwards = 0
        self.requests = 0
        if path is not None and path.exists():
            with np.load(path) as saved:
                digests = (bytes(d) for d in saved["digest"])
                self.cache = dict(zip(zip(saved["index"].tolist(), digests), saved["score"].tolist()))

    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        rows = x.detach().cpu().contiguous().numpy()
        keys = [(i, hashlib.blake2b(r.tobytes(), digest_size=16).digest()) for i, r in zip(index.tolist(), rows)]
        missing = [k for k, key in enumerate(keys) if key not in self.cache]
        if missing:
            chosen = torch.tensor(missing, device=x.device)
            scores = self.score_fn(x[chosen], index[chosen]).detach().double().cpu().tolist()
            self.cache.update(zip((keys[k] for k in missing), scores))
        self.forwards += len(missing)
        self.requests += len(keys)
        return torch.tensor([self.cache[key] for key in keys], dtype=torch.float64)

    def save(self) -> None:
        """Write the cache to :attr:`path` (nothing without one)."""
        if self.path is None or not self.cache:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.cache)
        digests = np.frombuffer(b"".join(k[1] for k in keys), np.uint8).reshape(len(keys), -1)
        index, scores = np.array([k[0] for k in keys]), np.array(list(self.cache.values()))
        np.savez(self.path, index=index, digest=digests, score=scores)


def cache_file(folder: Path | None, section: str, settings: dict) -> Path | None:
    """``folder/<section>-<hash of settings>.npz``: one score cache per model, images, targets and protocol."""
    if folder is None:
        return None
    digest = hashlib.blake2b(json.dumps(settings, sort_keys=True).encode(), digest_size=8).hexdigest()
    return folder / f"{section}-{digest}.npz"


def box_scorer(twin, targets: Sequence[BoxTarget]) -> ScoreFn:
    """Score function of box targets on an NCHW output map: the channel summed inside the box.

    ``dmbp_onnx.metrics.target_scorer`` takes class indices only; this is its counterpart for
    :class:`~dmbp_onnx.methods.BoxTarget` (output ``(B, C, H, W)``, boxes ``(y0, x0, y1, x1)``).
    """
    boxes = [(int(t.channel), *(int(v) for v in t.box)) for t in targets]

    def score_fn(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = twin(x.to(twin.device))
        rows = (boxes[i] for i in index.tolist())
        return torch.stack([out[r, c, y0:y1, x0:x1].sum() for r, (c, y0, x0, y1, x1) in enumerate(rows)])

    return score_fn


@dataclass(frozen=True)
class Protocol:
    """The metrics of one benchmark section.

    Attributes
    ----------
    subsets : int
        Random subsets per sensitivity-n fraction and image.
    patch : int
        Side of the sensitivity-n patches in pixels.
    patch_fractions : tuple of float
        Sensitivity-n fractions of patches.
    pixel_fractions : tuple of float
        Sensitivity-n fractions of single pixels (none: skipped).
    step : float or None
        Deletion / insertion step (None: no curves).
    channel_axis : int
        1 for NCHW inputs, -1 for NHWC.
    batch_size : int
        Perturbed inputs per forward pass.
    """

    subsets: int
    patch: int
    patch_fractions: tuple[float, ...]
    pixel_fractions: tuple[float, ...] = ()
    step: float | None = None
    channel_axis: int = 1
    batch_size: int = 64

    def metric_keys(self, localisation: bool) -> list[str]:
        """Metric names this protocol produces, in table order (``localisation``: masks given)."""
        keys = [f"sens_{metrics.unit_name(None)}_{f:g}" for f in self.pixel_fractions]
        keys += [f"sens_{metrics.unit_name(self.patch)}_{f:g}" for f in self.patch_fractions]
        keys += ["deletion", "insertion"] if self.step is not None else []
        return keys + (["pointing", "energy"] if localisation else [])

    def as_dict(self) -> dict:
        """Settings for the results JSON (equal settings: results can be merged and paired)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def evaluate(
    twin, maps: np.ndarray, x: torch.Tensor, targets: list, scorer: ScoreFn, protocol: Protocol,
    masks: np.ndarray | None
) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-image values of every metric of ``protocol`` for signed pixel maps ``(N, H, W)``.

    One call of :func:`dmbp_onnx.metrics.evaluate` with the section's (cached) score function;
    the keys are :meth:`Protocol.metric_keys`.
    """
    units = {None: protocol.pixel_fractions, protocol.patch: protocol.patch_fractions}
    units = {unit: fractions for unit, fractions in units.items() if fractions}
    chosen = (["sensitivity"] if units else []) + (["deletion", "insertion"] if protocol.step is not None else [])
    chosen += ["pointing", "energy"] if masks is not None else []
    found = metrics.evaluate(
        twin, x, maps, targets, masks, metrics=chosen, units=units, n_subsets=protocol.subsets,
        step=protocol.step, batch_size=protocol.batch_size, score_fn=scorer, channel_axis=protocol.channel_axis,
    )  # fmt: skip
    out: dict[str, np.ndarray] = {}
    for unit, results in (found.sensitivity_units or {}).items():
        out.update({f"sens_{metrics.unit_name(unit)}_{f:g}": r.per_image for f, r in results.items()})
    if protocol.step is not None:
        out["deletion"], out["insertion"] = found.deletion.auc, found.insertion.auc
    if masks is not None:
        out["pointing"] = found.pointing.hits.astype(np.float64)
        out["energy"] = found.energy
    return out


def magnitudes(attribution) -> dict:
    """DMBP's §3.5 magnitudes (medians over images), collapsed count and per-image non-empty a-."""
    mags = attribution.extras.get("magnitudes")
    if mags is None:
        return {}
    medians = {k: _round(float(v.float().median())) for k, v in mags.items() if k != "collapsed"}
    return {
        "magnitudes": medians,
        "collapsed": int(mags["collapsed"].sum()),
        "negative_nonempty": (mags["negative_share"] > 0.01).double().numpy(),
    }


def _round(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def run_method(
    name: str,
    method,
    x: torch.Tensor,
    targets: list,
    scorer: ScoreFn,
    protocol: Protocol,
    masks: np.ndarray | None = None,
    extra: Callable[..., dict[str, np.ndarray]] | None = None,
) -> dict:
    """Attribute ``x`` for ``targets`` with ``method``, time it and evaluate ``protocol``.

    Parameters
    ----------
    name : str
        Row name, for the progress line.
    method : dmbp_onnx.methods.Method
        The configured method.
    x : torch.Tensor
        Model inputs.
    targets : list
        One class index or BoxTarget per image.
    scorer : callable
        Score function of the targets (a :class:`CachedScorer` shared by the section's methods).
    protocol : Protocol
        Metrics to compute.
    masks : numpy.ndarray, optional
        ``(N, H, W)`` bool ground truth for the pointing game and energy in the mask.
    extra : callable, optional
        ``extra(attribution) -> metric -> per-image values``, added to ``per_image``.

    Returns
    -------
    dict
        ``per_image`` (metric -> list), ``attribute_s_per_image``, ``metric_s``, ``options``, and
        for DMBP ``magnitudes`` and ``collapsed``; ``{"error": ...}`` when the method refuses the model.
    """
    start = time.perf_counter()
    try:
        attribution = method.attribute(x, targets)
    except DmbpOnnxError as exc:
        print(f"  {name}: failed: {exc}", flush=True)
        return {"error": f"{type(exc).__name__}: {exc}"}
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    per_image = evaluate(method.twin, attribution.pixel_map(), x, targets, scorer, protocol, masks)
    mags = magnitudes(attribution)
    if "negative_nonempty" in mags:
        per_image["negative_nonempty"] = mags.pop("negative_nonempty")
    if extra is not None:
        per_image.update(extra(attribution))
    result = {
        "per_image": {k: to_list(v) for k, v in per_image.items()},
        "attribute_s_per_image": round(seconds / len(x), 3),
        "metric_s": round(time.perf_counter() - start, 1),
        "options": {k: v for k, v in method.options.items() if k != "device"},
        **mags,
    }
    means = ", ".join(f"{k} {np.nanmean(v):.3f}" for k, v in per_image.items() if np.isfinite(v).any())
    print(f"  {name}: {means} ({seconds:.0f} s + {result['metric_s']:.0f} s metrics)", flush=True)
    return result


def run_methods(
    builders: dict[str, Callable],
    twin,
    x: torch.Tensor,
    targets: list,
    scorer: CachedScorer,
    protocol: Protocol,
    masks: np.ndarray | None = None,
    extra: Callable[..., dict[str, np.ndarray]] | None = None,
) -> dict[str, dict]:
    """:func:`run_method` for every ``name -> build(twin)`` of ``builders``, saving the score cache after each."""
    results = {}
    for name, build in builders.items():
        results[name] = run_method(name, build(twin), x, targets, scorer, protocol, masks, extra)
        scorer.save()
    print(f"  metric forward passes: {scorer.forwards} of {scorer.requests} scored inputs", flush=True)
    return results

"""One entry point: every metric of a batch of maps, for any target kind the methods accept."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from dmbp_onnx.device import to_numpy
from dmbp_onnx.methods.base import Attribution
from dmbp_onnx.methods.target import (
    BoxTarget,
    RegionTarget,
    _channel_axis,
    default_targets,
    per_image_targets,
    resolve_targets,
)
from dmbp_onnx.metrics._perturb import Baseline, ScoreFn, spatial_shape
from dmbp_onnx.metrics.deletion import CurveResult, deletion_auc, insertion_auc
from dmbp_onnx.metrics.pointing import PointingResult, energy_in_mask, pointing_game
from dmbp_onnx.metrics.scoring import selector_scorer, target_scorer
from dmbp_onnx.metrics.sensitivity import SensitivityN, sensitivity_n

#: Every metric :func:`evaluate` computes by default.
ALL_METRICS = ("sensitivity", "deletion", "insertion", "pointing", "energy")


@dataclass(frozen=True)
class Evaluation:
    """The metrics of one batch of maps (a metric not computed is None).

    Attributes
    ----------
    targets : list
        The explained target of each image (class index, BoxTarget or RegionTarget).
    sensitivity_units : dict or None
        Sensitivity-n per unit and fraction: patch side (None: single pixels) -> fraction ->
        SensitivityN, in the order the units were given.
    deletion, insertion : CurveResult or None
        Deletion and insertion curves.
    pointing : PointingResult or None
        Pointing game against the regions (given masks, or the targets' boxes / regions).
    energy : numpy.ndarray or None
        ``(N,)`` share of each map's positive mass inside its region.
    regions : numpy.ndarray or None
        ``(N, H, W)`` bool regions in input pixels that pointing and energy used.
    """

    targets: list
    sensitivity_units: dict[int | None, dict[float, SensitivityN]] | None = None
    deletion: CurveResult | None = None
    insertion: CurveResult | None = None
    pointing: PointingResult | None = None
    energy: np.ndarray | None = None
    regions: np.ndarray | None = None

    @property
    def sensitivity(self) -> dict[float, SensitivityN] | None:
        """Sensitivity-n per fraction of the first (usually the only) unit; None when not computed."""
        return next(iter(self.sensitivity_units.values()), None) if self.sensitivity_units else None

    def summary(self) -> dict[str, float]:
        """Headline numbers, JSON-ready: means over the images (NaN entries left out).

        Sensitivity-n is ``sensitivity_n@<fraction>`` for one unit, ``sensitivity_n[<unit>]@<fraction>``
        (unit ``px`` or ``<p>x<p>``) for several.
        """
        out: dict[str, float] = {}
        units = self.sensitivity_units or {}
        for patch, results in units.items():
            label = f"[{unit_name(patch)}]" if len(units) > 1 else ""
            for fraction, result in results.items():
                out[f"sensitivity_n{label}@{fraction:g}"] = result.mean
        for name, curve in (("deletion", self.deletion), ("insertion", self.insertion)):
            if curve is not None:
                out[f"{name}_auc"] = curve.mean_auc
                out[f"{name}_auc_normalised"] = _nanmean(curve.auc_normalised)
        if self.pointing is not None:
            out["pointing_accuracy"] = self.pointing.accuracy
        if self.energy is not None:
            out["energy_in_region"] = _nanmean(self.energy)
        return out


def evaluate(
    twin,
    x: torch.Tensor,
    maps: np.ndarray | torch.Tensor | Attribution,
    target: Any = None,
    masks: np.ndarray | torch.Tensor | None = None,
    *,
    metrics: Sequence[str] = ALL_METRICS,
    fractions: Sequence[float] = (0.01, 0.05, 0.1, 0.2, 0.5),
    n_subsets: int = 100,
    patch: int | None = None,
    step: float = 0.02,
    sensitivity_baseline: Baseline = 0.0,
    deletion_baseline: Baseline = "zero",
    insertion_baseline: Baseline = "blur",
    batch_size: int = 64,
    seed: int = 0,
    units: Mapping[int | None, Sequence[float]] | None = None,
    score_fn: ScoreFn | None = None,
    channel_axis: int | None = None,
) -> Evaluation:
    """Every metric of ``maps`` for ``target``: sensitivity-n, deletion, insertion, pointing, energy.

    The explained score is the one the methods explain: a class logit, or the summed
    score of a box or region of an output map (the target's selector contracted with
    the output). Pointing and energy need a region per image: ``masks`` when given (e.g.
    ground-truth objects), otherwise the targets' boxes / regions mapped to input pixels
    (nearest neighbour, for an output map of rank 4); without either they are None.

    The perturbation metrics run in the order sensitivity-n (unit by unit), deletion,
    insertion, so a memoising ``score_fn`` shared by several maps sees the same batches
    for each of them.

    Parameters
    ----------
    twin : dmbp_onnx.Twin
        The model (its ``channel_axis`` gives the input layout unless ``channel_axis`` is given).
    x : torch.Tensor
        ``(N, ...)`` images in the model's layout.
    maps : numpy.ndarray, torch.Tensor or Attribution
        ``(N, H, W)`` signed per-pixel maps (an Attribution's signed pixel map).
    target : int, BoxTarget, RegionTarget, sequence of them, or None
        As for ``Method.attribute``; None: the default target (predicted class or region).
    masks : numpy.ndarray or torch.Tensor, optional
        ``(N, H, W)`` bool regions for pointing and energy.
    metrics : sequence of str
        Which of :data:`ALL_METRICS` to compute.
    fractions, n_subsets, patch, seed
        Sensitivity-n's (see :func:`~dmbp_onnx.metrics.sensitivity_n`).
    units : mapping of int or None to sequence of float, optional
        Sensitivity-n at several units, each with its own fractions: patch side (None: single
        pixels) -> fractions; replaces ``patch`` and ``fractions`` (default ``{patch: fractions}``).
    step : float
        Deletion / insertion step.
    sensitivity_baseline, deletion_baseline, insertion_baseline : float, str or torch.Tensor
        Each metric's baseline (see :func:`~dmbp_onnx.metrics.resolve_baseline`).
    batch_size : int
        Perturbed inputs per forward pass.
    score_fn : callable, optional
        The explained score ``score_fn(x, index) -> (B,)`` to use instead of the one built from
        ``twin`` and ``target`` (e.g. a memoising wrapper shared by several methods); ``target``
        is then only recorded, and the twin runs only for a default target or for regions taken
        from box / region targets.
    channel_axis : int or None, optional
        Channel axis of ``x`` (default: the twin's).

    Returns
    -------
    Evaluation
    """
    unknown = sorted(set(metrics) - set(ALL_METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(ALL_METRICS)}")
    if isinstance(maps, Attribution):
        maps = maps.pixel_map("signed")
    axis = twin.channel_axis if channel_axis is None else channel_axis
    output = None
    if score_fn is None or target is None:
        targets, built, output = _targets(twin, x, target)
        score_fn = built if score_fn is None else score_fn
    else:
        targets = per_image_targets(target, int(x.shape[0])) or [target] * int(x.shape[0])
    found: dict[str, Any] = {"targets": targets}
    if "sensitivity" in metrics:
        found["sensitivity_units"] = {
            unit: sensitivity_n(
                score_fn, x, maps, unit_fractions, n_subsets, sensitivity_baseline, unit, axis, batch_size, seed
            )
            for unit, unit_fractions in ({patch: fractions} if units is None else units).items()
        }
    if "deletion" in metrics:
        found["deletion"] = deletion_auc(score_fn, x, maps, step, deletion_baseline, channel_axis=axis,
                                         batch_size=batch_size)  # fmt: skip
    if "insertion" in metrics:
        found["insertion"] = insertion_auc(score_fn, x, maps, step, insertion_baseline, channel_axis=axis,
                                           batch_size=batch_size)  # fmt: skip
    regions = None
    if masks is not None:
        regions = to_numpy(masks)
    elif {"pointing", "energy"} & set(metrics) and all(isinstance(t, (BoxTarget, RegionTarget)) for t in targets):
        if output is None:
            with torch.no_grad():
                output = twin(x.to(twin.device))
        regions = target_regions(targets, output, spatial_shape(x, axis))
    if regions is not None and {"pointing", "energy"} & set(metrics):
        found["regions"] = regions
        if "pointing" in metrics:
            found["pointing"] = pointing_game(maps, regions)
        if "energy" in metrics:
            found["energy"] = energy_in_mask(maps, regions)
    return Evaluation(**found)


def _targets(twin, x: torch.Tensor, target: Any) -> tuple[list, ScoreFn, torch.Tensor]:
    """One target per image, the score function explaining them, and the twin's output at ``x``."""
    with torch.no_grad():
        output = twin(x.to(twin.device))
    n = int(x.shape[0])
    targets = default_targets(output) if target is None else per_image_targets(target, n) or [target] * n
    if all(isinstance(t, Integral) and not isinstance(t, bool) for t in targets):
        classes = [int(t) for t in targets]
        return classes, target_scorer(twin, classes), output
    resolved, selectors = resolve_targets(output, targets)
    return resolved, selector_scorer(twin, selectors), output


def target_regions(targets: list, output: torch.Tensor, hw: tuple[int, int]) -> np.ndarray | None:
    """``(N, H, W)`` bool input-pixel regions of box / region targets on a rank-4 output map.

    Each box or region is taken from output positions to input pixels by nearest
    neighbour. None when a target is a class index or the output is not ``(N, ., ., .)``.
    """
    if output.dim() != 4 or not all(isinstance(t, (BoxTarget, RegionTarget)) for t in targets):
        return None
    rows, cols = None, None
    regions = []
    for t in targets:
        region = _output_region(t, tuple(output.shape))
        if rows is None:
            rows = np.arange(hw[0]) * region.shape[0] // hw[0]
            cols = np.arange(hw[1]) * region.shape[1] // hw[1]
        regions.append(region[np.ix_(rows, cols)])
    return np.stack(regions)


def unit_name(patch: int | None) -> str:
    """A sensitivity-n unit's name: ``px`` for single pixels, ``<p>x<p>`` for patches."""
    return "px" if patch is None else f"{patch}x{patch}"


def _output_region(target: BoxTarget | RegionTarget, shape: tuple[int, ...]) -> np.ndarray:
    """The target's positions on the output map, ``(h, w)`` bool."""
    if isinstance(target, RegionTarget):
        return target.mask.detach().cpu().numpy().astype(bool)
    axis = _channel_axis(shape, target)
    spatial = [shape[a] for a in range(1, 4) if a != axis]
    region = np.zeros(spatial, dtype=bool)
    if target.box is None:
        region[:] = True
    else:
        y0, x0, y1, x1 = (int(v) for v in target.box)
        region[y0:y1, x0:x1] = True
    return region


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

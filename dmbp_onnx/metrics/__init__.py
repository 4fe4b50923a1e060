"""Faithfulness and localisation metrics for per-pixel attribution maps.

Perturbation metrics take a score function ``score_fn(x, index) -> (B,)`` (build
one from a twin with :func:`target_scorer` or :func:`selector_scorer`) rather than an
attribution method; :func:`evaluate` computes them all for a batch and any target kind;
maps are signed per-pixel arrays ``(N, H, W)`` (attribution summed over channels).
"""

from dmbp_onnx.metrics._perturb import gaussian_blur, resolve_baseline
from dmbp_onnx.metrics.deletion import CurveResult, deletion_auc, insertion_auc
from dmbp_onnx.metrics.evaluate import ALL_METRICS, Evaluation, evaluate, target_regions, unit_name
from dmbp_onnx.metrics.intervals import Interval, bootstrap_mean, paired_difference
from dmbp_onnx.metrics.negative import empty_negative_maps, negative_share, signed_negative_share
from dmbp_onnx.metrics.pointing import PointingResult, energy_in_mask, pointing_game
from dmbp_onnx.metrics.randomisation import (
    RandomisationStep,
    model_randomisation,
    parameterised_layers,
    rankdata,
    spearman,
)
from dmbp_onnx.metrics.scoring import selector_scorer, target_scorer
from dmbp_onnx.metrics.sensitivity import SensitivityN, pearson, sensitivity_n

__all__ = [
    "ALL_METRICS",
    "CurveResult",
    "Evaluation",
    "Interval",
    "PointingResult",
    "RandomisationStep",
    "SensitivityN",
    "bootstrap_mean",
    "deletion_auc",
    "empty_negative_maps",
    "evaluate",
    "energy_in_mask",
    "gaussian_blur",
    "insertion_auc",
    "model_randomisation",
    "negative_share",
    "paired_difference",
    "parameterised_layers",
    "pearson",
    "pointing_game",
    "rankdata",
    "resolve_baseline",
    "selector_scorer",
    "sensitivity_n",
    "signed_negative_share",
    "spearman",
    "target_regions",
    "target_scorer",
    "unit_name",
]

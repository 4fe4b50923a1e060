"""A short DMBP run whose invariants must hold on any eligible model.

The invariants are those of DMBP's own mapping, the input gradient (``rule="gradient"``): they
check the twin's masked mapping against plain autograd. DMBP's default rule (LRP's Gamma rule,
not a gradient) is then run too and must give finite maps with a positive map summing to more
than 0 and more than the negative map.

* With every mask at 1 (zero iterations) both masked mappings equal the plain input
  gradient, and so does the unmasked mapping DMBP reports (``extras["gradient"]``).
* The twin's forward output is bit-for-bit the same after DMBP as before.
* Per image, the positive map sums to more than 0 and the negative map to at most 0
  (once the masks have had about 25 iterations to move from 1 towards 0).
* Every map and every loss value is finite.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch

_GRAD_RTOL = 1e-4
_GRAD_ATOL = 1e-6  # relative to the largest gradient entry


def _same_mapping(a: torch.Tensor, b: torch.Tensor) -> tuple[bool, float]:
    """Whether two mappings agree to rounding; and their largest absolute difference."""
    if a.shape != b.shape:
        return False, float("inf")
    if not a.numel():
        return True, 0.0
    atol = _GRAD_ATOL * max(float(b.abs().max()), 1e-30)
    return bool(torch.allclose(a, b, rtol=_GRAD_RTOL, atol=atol)), float((a - b).abs().max())


def _finite(tensor: torch.Tensor) -> bool:
    return bool(torch.isfinite(tensor).all())


def _sums(result) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the sums of the positive and of the negative map."""
    return result.positive.flatten(1).sum(1), result.negative.flatten(1).sum(1)


def _not_positive(positive: torch.Tensor, negative: torch.Tensor) -> list[int]:
    """Images whose positive map does not sum to more than 0 and than the negative map."""
    return [i for i in range(len(positive)) if not (positive[i] > 0 and positive[i] > negative[i])]


def dmbp_smoke(twin, x: np.ndarray, iterations: int, seed: int) -> tuple[list[str], dict]:
    """Run DMBP for ``iterations`` steps on ``x`` and check its invariants.

    Parameters
    ----------
    twin : Twin
        An eligible twin.
    x : numpy.ndarray
        A batch of the model's single input, explained on the default target
        (:func:`~dmbp_onnx.methods.target.default_targets`: the predicted class, or an output
        map's predicted class region) (for a model that declares a fixed batch, its
        first rows, padded with copies of the last up to that batch).
    iterations : int
        DMBP iterations.
    seed : int
        DMBP seed.

    Returns
    -------
    violations, details
        One sentence per violated invariant (empty when all hold), and the measured values.

    Raises
    ------
    DmbpOnnxError
        When DMBP refuses the model or the input.
    """
    from dmbp_onnx.methods import DMBP
    from dmbp_onnx.methods.base import pad_batch, static_batch
    from dmbp_onnx.methods.target import target_rule

    method = DMBP(twin, iterations=iterations, seed=seed, device="cpu", rule="gradient")
    batch = method.validate_input(x)
    fixed = static_batch(twin)
    if fixed is not None:  # the twin and the gradients below run the model as is: exactly its batch
        batch = pad_batch(batch[:fixed], fixed)
    with torch.no_grad():
        before = twin(batch).clone()
    result = method.attribute(batch)
    at_one = DMBP(twin, iterations=0, path_steps=1, seed=seed, device="cpu", rule="gradient").attribute(
        batch, result.target
    )
    default = DMBP(twin, iterations=iterations, seed=seed, device="cpu")
    default_result = default.attribute(batch, result.target) if default.rule != method.rule else result
    with torch.no_grad():
        after = twin(batch)
    gradient = method.gradient(batch, result.target)[0].detach().cpu()
    alphas = method.alphas()
    path = sum(method.gradient(a * batch, result.target)[0].detach().cpu() for a in alphas) / len(alphas)

    violations = []
    checks = {
        "masks at 1: W+ equals the plain gradient": _same_mapping(at_one.extras["w_pos"], gradient),
        "masks at 1: W- equals the plain gradient": _same_mapping(at_one.extras["w_neg"], gradient),
        "the unmasked mapping equals the path-averaged gradient": _same_mapping(result.extras["gradient"], path),
    }
    violations += [f"{label} (max abs difference {diff:.3g})" for label, (ok, diff) in checks.items() if not ok]
    if not torch.equal(before, after):
        violations.append("the twin's output changed after DMBP")
    positive, negative = _sums(result)
    default_positive, default_negative = _sums(default_result)
    sides = (
        (positive, negative, "", f" after {iterations} iterations (masks move by about {method.lr} per step)"),
        (default_positive, default_negative, f"with the default rule ({default.rule}), ", ""),
    )
    for pos, neg, before_text, after_text in sides:
        bad = _not_positive(pos, neg)
        if bad:
            violations.append(
                f"{before_text}the positive map does not sum to more than 0 and than the negative map "
                f"for image(s) {bad}{after_text}"
            )
    violations += [
        f"non-finite values in the {name} map with the default rule ({default.rule})"
        for name in ("positive", "negative") if not _finite(getattr(default_result, name))
    ]  # fmt: skip
    history = result.extras["loss_history"]
    maps = {"signed": result.signed, "positive": result.positive, "negative": result.negative, "loss": history}
    violations += [f"non-finite values in the {name} map" for name, t in maps.items() if not _finite(t)]
    if tuple(history.shape) != (iterations, batch.shape[0]):
        violations.append(f"loss history has shape {list(history.shape)}, expected [{iterations}, {batch.shape[0]}]")
    details = {
        "iterations": iterations,
        "batch": int(batch.shape[0]),
        "target": [int(t) if isinstance(t, Integral) else repr(t) for t in result.target],
        "target_rule": target_rule(before),
        "positive_sum": positive.tolist(),
        "negative_sum": negative.tolist(),
        "default_rule": default.rule,
        "default_positive_sum": default_positive.tolist(),
        "default_negative_sum": default_negative.tolist(),
        "gradient_max_abs_difference": {label: diff for label, (_, diff) in checks.items()},
        "loss_first": history[0].tolist() if len(history) else None,
        "loss_last": history[-1].tolist() if len(history) else None,
    }
    return violations, details

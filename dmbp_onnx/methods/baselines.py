"""Gradient-based baselines: Gradient, Gradient x Input, Integrated Gradients, SmoothGrad.

Each is batched over the images and shares :class:`Method`'s contract; its
signed map is split into ``positive = relu(signed)`` and ``negative = -relu(-signed)``.
"""

from __future__ import annotations

from numbers import Integral, Real

import torch

from dmbp_onnx.errors import InputError
from dmbp_onnx.methods.base import Attribution, Method


def _option(ok: bool, method: str, label: str, value) -> None:
    if not ok:
        raise InputError(f"invalid {method} option {label}={value!r}")


class Gradient(Method):
    """The input gradient of the target score (Captum's ``Saliency(abs=False)``)."""

    name = "gradient"

    def _attribute(self, x: torch.Tensor, target) -> Attribution:
        grad, score, targets, _ = self.gradient(x, target)
        return Attribution.from_signed(
            self.name, grad, target=targets, score=score.cpu(), explains=self.explains,
            channel_axis=self.twin.channel_axis,
        )  # fmt: skip


class GradientXInput(Method):
    """Gradient times input, ``W * x`` (the plain linear-mapping attribution)."""

    name = "gradxinput"

    def _attribute(self, x: torch.Tensor, target) -> Attribution:
        grad, score, targets, _ = self.gradient(x, target)
        return Attribution.from_signed(
            self.name, grad.cpu() * x, target=targets, score=score.cpu(), explains=self.explains,
            channel_axis=self.twin.channel_axis,
        )  # fmt: skip


class IntegratedGradients(Method):
    """Integrated Gradients (Sundararajan et al. 2017) with the trapezoid rule.

    Parameters
    ----------
    twin : Twin
        The model.
    steps : int
        Points on the straight path from ``baseline`` to ``x`` (both ends included);
        the gradients are averaged with trapezoid weights ``1/(steps-1)`` (halved at
        the ends), so the sum of the map approximates ``z(x) - z(baseline)``. (Captum's
        "riemann_trapezoid" uses weights ``1/steps`` instead: its map is ours times
        ``(steps-1)/steps``.)
    baseline : float
        Constant baseline image value.
    device : str
        "auto" = CUDA when available.

    Notes
    -----
    ``extras["baseline_score"]`` holds the target score at the baseline.
    """

    name = "ig"

    def __init__(self, twin, steps: int = 32, baseline: float = 0.0, device: str = "auto") -> None:
        super().__init__(twin, device)
        _option(isinstance(steps, Integral) and steps >= 2, "IntegratedGradients", "steps", steps)
        _option(isinstance(baseline, Real), "IntegratedGradients", "baseline", baseline)
        self.steps, self.baseline = int(steps), float(baseline)
        self.options.update(steps=self.steps, baseline=self.baseline)

    def _attribute(self, x: torch.Tensor, target) -> Attribution:
        _, score, targets, _ = self.gradient(x, target)
        xd = x.to(self.device)
        base = torch.full_like(xd, self.baseline)
        total = torch.zeros_like(xd)
        base_score = score
        for k in range(self.steps):
            alpha = k / (self.steps - 1)
            weight = (0.5 if k in (0, self.steps - 1) else 1.0) / (self.steps - 1)
            grad, s, _, _ = self.gradient(base + alpha * (xd - base), targets)
            total += weight * grad
            if k == 0:
                base_score = s
        return Attribution.from_signed(
            self.name, (total * (xd - base)).cpu(), target=targets, score=score.cpu(),
            explains=self.explains, extras={"baseline_score": base_score.cpu(), "steps": self.steps},
            channel_axis=self.twin.channel_axis,
        )  # fmt: skip


class SmoothGrad(Method):
    """SmoothGrad (Smilkov et al. 2017): the mean gradient over noisy copies of the input.

    Parameters
    ----------
    twin : Twin
        The model.
    samples : int
        Noisy copies per image.
    sigma : float
        Noise standard deviation relative to each image's value range (max - min), as in the paper.
    seed : int
        Seed of the noise (a private generator; the global RNG is untouched).
    device : str
        "auto" = CUDA when available.
    """

    name = "smoothgrad"

    def __init__(self, twin, samples: int = 16, sigma: float = 0.15, seed: int = 0, device: str = "auto") -> None:
        super().__init__(twin, device)
        _option(isinstance(samples, Integral) and samples >= 1, "SmoothGrad", "samples", samples)
        _option(isinstance(sigma, Real) and sigma >= 0, "SmoothGrad", "sigma", sigma)
        self.samples, self.sigma, self.seed = int(samples), float(sigma), int(seed)
        self.options.update(samples=self.samples, sigma=self.sigma, seed=self.seed)

    def _attribute(self, x: torch.Tensor, target) -> Attribution:
        _, score, targets, _ = self.gradient(x, target)
        flat = x.flatten(1)
        spread = (flat.max(1).values - flat.min(1).values).reshape((-1,) + (1,) * (x.dim() - 1))
        generator = torch.Generator().manual_seed(self.seed)
        total = torch.zeros_like(x, device=self.device)
        for _ in range(self.samples):
            noise = torch.randn(x.shape, generator=generator) * (self.sigma * spread)
            grad, _, _, _ = self.gradient(x + noise, targets)
            total += grad
        return Attribution.from_signed(
            self.name, (total / self.samples).cpu(), target=targets, score=score.cpu(),
            explains=self.explains, extras={"samples": self.samples, "sigma": self.sigma},
            channel_axis=self.twin.channel_axis,
        )  # fmt: skip

"""Adam for DMBP's mask parameters, written out.

The update is torch.optim.Adam's (single-tensor form, default betas and eps, no weight decay),
step for step. It is written here because ``torch.optim`` imports ``torch._dynamo`` when the
first optimiser is built, which cost 1.5-8 s of every ``dmbp-onnx explain`` run (more than the
optimisation itself on the demo model).
"""

from __future__ import annotations

from typing import Sequence

import torch


class Adam:
    """Adam (Kingma & Ba, 2015) over a list of tensors whose ``.grad`` the caller sets.

    Parameters
    ----------
    params : sequence of torch.Tensor
        The parameters, updated in place by :meth:`step`.
    lr : float
        Learning rate: the first step moves every parameter with a non-zero gradient by ``lr``.
    betas : tuple of float
        Decay of the first and second moment estimates.
    eps : float
        Added to the denominator.
    """

    def __init__(
        self, params: Sequence[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = float(lr), betas, float(eps)
        self.moments = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params]
        self.steps = 0

    @torch.no_grad()
    def step(self, scale: torch.Tensor | None = None) -> None:
        """One update of every parameter from its ``.grad`` (parameters without one are left alone).

        ``scale``, broadcastable to every parameter, multiplies the step entry by entry (DMBP halves
        it for the images whose last step collapsed their maps); None: torch.optim.Adam's step.
        """
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.steps)
        correction2 = (1 - beta2**self.steps) ** 0.5
        for p, (mean, square) in zip(self.params, self.moments):
            if p.grad is None:
                continue
            mean.lerp_(p.grad, 1 - beta1)
            square.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denominator = (square.sqrt() / correction2).add_(self.eps)
            if scale is None:
                p.addcdiv_(mean, denominator, value=-step_size)
            else:
                p.sub_(mean / denominator * scale * step_size)

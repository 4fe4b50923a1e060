"""The iterates of DMBP's optimisation: the best one per image, early stop, collapse and back-off."""

from __future__ import annotations

import torch

from dmbp_onnx.methods.dmbp.objectives import PlainStats

#: Early stop (``tol`` > 0): steps without a relative loss improvement above ``tol`` before an image settles.
PATIENCE = 3


class Best:
    """The iterate with the lowest loss so far, per image: its mappings ``(2 n, ...)``, masks
    (site -> ``(2, n, C)``) and step. Sign-like Adam steps on all masks at once can overshoot on
    deep networks (masks compound multiplicatively along the depth); returning the best iterate
    instead of the last one makes the result never worse, by the loss, than the unmasked start.
    A collapsed iterate (see :func:`alive_maps`) is never chosen: the purity ratios of an empty map are 0,
    which can make its loss lower than that of a real one on heavily cancelling models."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.loss: torch.Tensor | None = None
        self.w: torch.Tensor | None = None
        self.masks: dict[str, torch.Tensor] = {}
        self.step = torch.zeros(n, dtype=torch.long)

    def update(
        self, step: int, loss: torch.Tensor, w: torch.Tensor, masks: dict[str, torch.Tensor], alive: torch.Tensor
    ) -> None:
        """Keep ``step``'s iterate for the images whose loss ``(n,)`` is below their best and whose
        maps have not collapsed (``alive``, ``(n,)`` bool; the first iterate is always kept)."""
        if self.loss is None:
            self.loss, self.w, self.masks = loss.clone(), w.clone(), {k: m.clone() for k, m in masks.items()}
            self.step = torch.full((self.n,), step, dtype=torch.long, device=loss.device)
            return
        better = (loss < self.loss) & alive
        if not bool(better.any()):
            return
        self.loss = torch.where(better, loss, self.loss)
        rows = better.repeat(w.shape[0] // self.n).reshape(-1, *([1] * (w.dim() - 1)))
        self.w = torch.where(rows, w, self.w)
        self.masks = {k: torch.where(better[None, :, None], m, self.masks[k]) for k, m in masks.items()}
        self.step = torch.where(better, step, self.step)


class Settling:
    """Early stop on the loss: an image has settled once its loss has not improved on its best by
    more than ``tol`` (relative) for ``PATIENCE`` steps; a chunk stops when all its images have.
    With ``tol`` 0 it only records, per image, the last step that improved the loss."""

    def __init__(self, n: int, tol: float, device: torch.device) -> None:
        self.tol = tol
        self.best = torch.full((n,), float("inf"), device=device)
        self.last_improved = torch.zeros(n, device=device)
        self.step = 0

    def update(self, loss: torch.Tensor) -> bool:
        """Record the loss ``(n,)`` of one step; True when every image has settled."""
        self.step += 1
        improved = loss < self.best - self.tol * self.best.abs().nan_to_num(posinf=0.0)
        self.best = torch.minimum(self.best, loss)
        self.last_improved = torch.where(improved, float(self.step), self.last_improved)
        return self.tol > 0 and bool((self.step - self.last_improved >= PATIENCE).all())

    def used(self) -> torch.Tensor:
        """``(n,)`` iterations each image needed: the last step that improved its loss."""
        return self.last_improved.clone()


@torch.no_grad()
def back_off(theta: dict[str, torch.Tensor], best: Best, alive: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Images whose maps just collapsed go back to their best masks and take half-size steps from
    there (box masks: ``theta`` are the masks); the new step scale ``(1, n, 1)``."""
    dead = ~alive
    for name, t in theta.items():
        t[:, dead] = best.masks[name][:, dead]
    return torch.where(dead[None, :, None], scale / 2, scale)


def alive_maps(w: torch.Tensor, x: torch.Tensor, stats: PlainStats) -> torch.Tensor:
    """``(n,)`` bool: the mappings ``w`` ``(sets n, ...)`` of the mask sets have not collapsed, i.e.
    ``sum |W+ x| + sum |W- x| >= 1 %`` of S (the ``collapsed`` magnitude's rule)."""
    mass = (w.unflatten(0, (-1, x.shape[0])) * x).flatten(2).abs().sum((0, 2))
    return mass >= 0.01 * stats.total

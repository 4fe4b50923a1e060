"""The iterates of DMBP's optimisation: the best one per image, early stop, collapse and back-off."""

from __future__ import annotations

import torch

from dmbp_onnx.methods.dmbp.objectives import PlainStats

#: Early stop (``tol`` > 0): steps without a relative loss improvement above ``tol`` before an image settles.
PATIENCE = 3


class Best:
    """The iterate with the lowest loss so far, per image or per (mask set, image): its mappings
    ``(sets n, ...)``, masks (site -> ``(sets, n, C)``) and step. Sign-like Adam steps on all masks
    at once can overshoot on deep networks (masks compound multiplicatively along the depth);
    returning the best iterate instead of the last one makes the result never worse, by the loss,
    than the unmasked start. A collapsed iterate (see :func:`alive_maps`) is never chosen: the
    purity ratios of an empty map are 0, which can make its loss lower than that of a real one.

    With a loss per set (``(sets, n)``, a separable objective) each set keeps its own best iterate,
    so the negative set can stay at an earlier iterate where a later one emptied it while the
    positive set keeps improving; with a loss per image (``(1, n)``) the sets move together.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.loss: torch.Tensor | None = None
        self.w: torch.Tensor | None = None
        self.masks: dict[str, torch.Tensor] = {}
        self.step = torch.zeros(1, n, dtype=torch.long)

    def update(
        self, step: int, loss: torch.Tensor, w: torch.Tensor, masks: dict[str, torch.Tensor], alive: torch.Tensor
    ) -> None:
        """Keep ``step``'s iterate where its loss ``(g, n)`` (g: 1 or the number of sets) is below
        the best and its maps have not collapsed (``alive``, ``(g, n)`` bool; the first iterate is
        always kept)."""
        if self.loss is None:
            self.loss, self.w, self.masks = loss.clone(), w.clone(), {k: m.clone() for k, m in masks.items()}
            self.step = torch.full(loss.shape, step, dtype=torch.long, device=loss.device)
            return
        better = (loss < self.loss) & alive
        if not bool(better.any()):
            return
        self.loss = torch.where(better, loss, self.loss)
        sets = w.shape[0] // self.n
        rows = better.expand(sets, self.n).reshape(-1, *([1] * (w.dim() - 1)))
        self.w = torch.where(rows, w, self.w)
        self.masks = {k: torch.where(better[:, :, None], m, self.masks[k]) for k, m in masks.items()}
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
    """Images (or mask sets of images) whose maps just collapsed (``alive`` ``(g, n)`` False) go back
    to their best masks and take half-size steps from there (box masks: ``theta`` are the masks);
    the new step scale, broadcastable to ``(sets, n, 1)``."""
    dead = ~alive[:, :, None]
    for name, t in theta.items():
        t.copy_(torch.where(dead, best.masks[name], t))
    return torch.where(dead, scale / 2, scale)


def alive_maps(w: torch.Tensor, x: torch.Tensor, stats: PlainStats, pixels=None) -> torch.Tensor:
    """Which maps have not collapsed.

    Without ``pixels``: ``(1, n)`` bool, the mask sets' mappings ``w`` ``(sets n, ...)`` together hold
    ``sum |W+ x| + sum |W- x| >= 1 %`` of S (the ``collapsed`` magnitude's rule). With ``pixels`` (the
    per-pixel reduction of a map, ``(N, ...) -> (N, P)``): ``(sets, n)``, each set on its own, which
    must moreover hold at least :data:`~dmbp_onnx.metrics.negative.EMPTY_SHARE` of the maps'
    per-pixel mass unless the plain map has less than
    :data:`~dmbp_onnx.metrics.negative.EVIDENCE_SHARE` of its per-pixel mass of that set's sign
    (P0 or N0): a map the plain mapping has evidence for may not be emptied.
    """
    n = x.shape[0]
    together = (w.unflatten(0, (-1, n)) * x).flatten(2).abs().sum((0, 2)) >= 0.01 * stats.total
    if pixels is None:
        return together[None]
    from dmbp_onnx.metrics.negative import EMPTY_SHARE, EVIDENCE_SHARE

    mass = pixels(w * torch.cat([x] * (w.shape[0] // n))).abs().sum(1).unflatten(0, (-1, n))  # (sets, n)
    plain = torch.stack([stats.positive_mass, stats.negative_mass])[: len(mass)]
    share = mass / mass.sum(0).clamp_min(1e-30)
    nothing_to_lose = plain < EVIDENCE_SHARE * (stats.positive_mass + stats.negative_mass)
    return together[None] & ((share >= EMPTY_SHARE) | nothing_to_lose)

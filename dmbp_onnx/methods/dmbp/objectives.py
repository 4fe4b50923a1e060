"""DMBP's mask parametrisations, losses and reported magnitudes (dmbp-method.md §3; our choices).

Shapes: masks of one site are ``(2, N, C)`` (index 0 = positive set, 1 = negative
set); per-pixel attributions ``a+``/``a-`` are ``(N, P)`` (summed over input
channels); every per-image quantity is ``(N,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

OBJECTIVES = ("r1", "perset", "r2", "threeway")
#: Objectives whose loss is a sum of one term per mask set (with box masks): the positive set can be
#: learned alone (DMBP's ``negative=False``) and gets the same masks as when both sets are learned.
SEPARABLE = ("r1", "perset")

#: Nuisance probability of the three-way softmax at the start: each mapping's mask starts
#: at ``1 - NUISANCE_INIT`` so a deep net starts within a few % of the plain gradient.
NUISANCE_INIT = 1e-3


class BoxMasks:
    """Masks are the parameters themselves, projected onto [0, 1] after every step; start at 1.

    Starting at exactly 1 makes the first iterate exactly the plain gradient at any
    depth (§3.1); Adam then moves each mask by about ``lr`` per step (§3.6).
    """

    #: The masks are the parameters, so mask gradients are parameter gradients.
    identity = True

    def init(
        self, n: int, channels: dict[str, int], device: torch.device, sets: int = 2
    ) -> dict[str, torch.Tensor]:
        """One ``(sets, n, C)`` parameter per site, all ones (``sets`` 1: the positive set alone)."""
        return {k: torch.ones(sets, n, c, device=device, requires_grad=True) for k, c in channels.items()}

    def masks(self, theta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``(2, n, C)`` masks per site."""
        return dict(theta)

    @torch.no_grad()
    def project(self, theta: dict[str, torch.Tensor]) -> None:
        """Clamp every parameter to [0, 1] in place."""
        for t in theta.values():
            t.clamp_(0.0, 1.0)


class ThreeWayMasks:
    """A softmax over (positive, negative, nuisance) logits per filter.

    Each mapping's mask is ``min(1, 2 p)`` of its probability, so an undecided
    filter (p+ = p- = 1/2) passes its full gradient to both mappings while a filter
    that commits to one set leaves the other (and the nuisance) disjoint. Logits
    start at ``(0, 0, log(2 eps / (1 - eps)))`` with ``eps = NUISANCE_INIT``, so
    both mappings start at masks ``1 - eps`` instead of the starved 1/3 (§3.1).
    """

    identity = False

    def init(
        self, n: int, channels: dict[str, int], device: torch.device, sets: int = 2
    ) -> dict[str, torch.Tensor]:
        """One ``(3, n, C)`` logit tensor per site (``sets`` must be 2: the three ways are coupled)."""
        if sets != 2:
            raise ValueError("the three-way parametrisation learns both mask sets")
        low = float(torch.log(torch.tensor(2 * NUISANCE_INIT / (1 - NUISANCE_INIT))))
        theta = {}
        for k, c in channels.items():
            t = torch.zeros(3, n, c, device=device)
            t[2] = low
            theta[k] = t.requires_grad_(True)
        return theta

    def masks(self, theta: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``(2, n, C)`` masks per site."""
        return {k: 1.0 - torch.relu(1.0 - 2.0 * torch.softmax(t, dim=0)[:2]) for k, t in theta.items()}

    def project(self, theta: dict[str, torch.Tensor]) -> None:
        """Nothing to project: the softmax keeps masks in [0, 1]."""


@dataclass
class PlainStats:
    """Per-image quantities of the plain mapping W that normalise the loss.

    Attributes
    ----------
    f0 : torch.Tensor
        ``sum(W * x)``, the input-explained part of the target score.
    scale : torch.Tensor
        ``|f0|``, floored at 1e-6 of ``total`` (and at 1e-30) so it never divides by zero.
    total : torch.Tensor
        S = ``sum |W * x|`` (elementwise, before summing over channels).
    positive_mass : torch.Tensor
        P0 = ``sum relu(a)`` of the channel-summed plain attribution (floored at 1e-6 S).
    negative_mass : torch.Tensor
        N0 = ``sum relu(-a)`` of the same (floored at 1e-6 S).
    """

    f0: torch.Tensor
    scale: torch.Tensor
    total: torch.Tensor
    positive_mass: torch.Tensor
    negative_mass: torch.Tensor

    @classmethod
    def of(cls, attribution: torch.Tensor, pixels: torch.Tensor) -> "PlainStats":
        """From the plain attribution ``W * x`` (``(N, ...)``) and its pixel map ``(N, P)``."""
        flat = attribution.flatten(1)
        f0 = flat.sum(1)
        total = flat.abs().sum(1)
        floor = (1e-6 * total).clamp_min(1e-30)
        scale = torch.maximum(f0.abs(), floor)
        positive, negative = torch.relu(pixels).sum(1), torch.relu(-pixels).sum(1)
        return cls(f0, scale, total, torch.maximum(positive, floor), torch.maximum(negative, floor))


def wrong_sign_ratio(a: torch.Tensor, sign: float, floor: torch.Tensor) -> torch.Tensor:
    """Share of the mass of ``a`` (``(N, P)``) with the wrong sign; ``floor`` ``(N,)`` guards 0/0."""
    return torch.relu(-sign * a).sum(1) / (a.abs().sum(1) + floor)


def loss_per_image(
    objective: str,
    a_pos: torch.Tensor,
    a_neg: torch.Tensor,
    masks: dict[str, torch.Tensor],
    stats: PlainStats,
    alpha: float,
    lam: float,
    beta: float,
    lam_neg: float | None = None,
) -> torch.Tensor:
    """``(N,)`` loss of every image.

    * ``r1`` and ``threeway``: ``-(sum a+ - sum a-) / |f0| + alpha (wr+ + wr-) + lam mean m+ + lam_neg mean m-``.
    * ``perset``: ``-sum a+ / P0 + sum a- / N0 + alpha (wr+ + wr-) + lam mean m+ + lam_neg mean m-``: each
      set's evidence relative to its own mass in the plain map, so one setting of the mask-mass weights
      means the same on models whose ``P0 / |f0|`` differ by an order of magnitude.
    * ``r2``: ``beta |sum a+ + sum a- - f0| / |f0| + alpha (wr+ + wr-) + lam (sum|a+| + sum|a-|) / P0``.

    ``wr`` is the wrong-sign mass over own mass (§3.3); evidence is normalised by
    ``|f0|`` (§3.2), so ``lam`` is relative to the explained score.
    """
    if objective == "r2":
        floor = 1e-6 * stats.total + 1e-30
        purity = wrong_sign_ratio(a_pos, 1.0, floor) + wrong_sign_ratio(a_neg, -1.0, floor)
        reconstruction = (a_pos.sum(1) + a_neg.sum(1) - stats.f0).abs() / stats.scale
        mass = (a_pos.abs().sum(1) + a_neg.abs().sum(1)) / stats.positive_mass
        return beta * reconstruction + alpha * purity + lam * mass
    return loss_per_set("r1" if objective == "threeway" else objective, a_pos, a_neg, masks, stats, alpha, lam, lam_neg).sum(0)


def loss_per_set(
    objective: str,
    a_pos: torch.Tensor,
    a_neg: torch.Tensor,
    masks: dict[str, torch.Tensor],
    stats: PlainStats,
    alpha: float,
    lam: float,
    lam_neg: float | None = None,
) -> torch.Tensor:
    """``(2, N)``: the terms of a :data:`SEPARABLE` objective's loss that belong to each mask set
    (positive first; see :func:`loss_per_image`); they sum to the loss."""
    if objective not in SEPARABLE:
        raise ValueError(f"objective {objective!r} does not split into per-set terms")
    floor = 1e-6 * stats.total + 1e-30
    if objective == "perset":
        evidence = (-a_pos.sum(1) / stats.positive_mass, a_neg.sum(1) / stats.negative_mass)
    else:
        evidence = (-a_pos.sum(1) / stats.scale, a_neg.sum(1) / stats.scale)
    terms = torch.stack(
        [evidence[0] + alpha * wrong_sign_ratio(a_pos, 1.0, floor), evidence[1] + alpha * wrong_sign_ratio(a_neg, -1.0, floor)]
    )
    lam_neg = lam if lam_neg is None else lam_neg
    if not (lam or lam_neg):
        return terms
    sizes = sum(m.shape[2] for m in masks.values())
    per_set = sum(m.sum(2) for m in masks.values()) / sizes  # (sets, N): mean mask of each set
    weights = torch.tensor([lam, lam_neg], dtype=terms.dtype, device=terms.device)[: len(per_set), None]
    return terms + torch.nn.functional.pad(weights * per_set, (0, 0, 0, 2 - len(per_set)))


def magnitudes(
    w: torch.Tensor,
    w_pos: torch.Tensor,
    w_neg: torch.Tensor,
    x: torch.Tensor,
    a_pos: torch.Tensor,
    a_neg: torch.Tensor,
    masks: dict[str, torch.Tensor],
    stats: PlainStats,
) -> dict[str, torch.Tensor]:
    """The §3.5 magnitudes per image (``(N,)`` tensors; ``collapsed`` is bool).

    ``positive_evidence`` = sum(a+)/f0; ``negative_share`` = sum|a-|/S;
    ``nuisance_share`` = sum|N * x|/S with N = W - W+ - W-; ``masks_at_bounds`` = share of
    mask entries (both sets) within 1e-6 of 0 or 1; ``collapsed`` = sum|A+| + sum|A-| < 1 % of S.
    """
    nuisance = ((w - w_pos - w_neg) * x).flatten(1).abs().sum(1)
    entries = torch.cat([m.permute(1, 0, 2).flatten(1) for m in masks.values()], dim=1)
    at_bounds = ((entries <= 1e-6) | (entries >= 1 - 1e-6)).float().mean(1)
    mass = (w_pos * x).flatten(1).abs().sum(1) + (w_neg * x).flatten(1).abs().sum(1)
    total = stats.total.clamp_min(1e-30)
    return {
        "positive_evidence": a_pos.sum(1) / torch.where(stats.f0 == 0, 1e-30, stats.f0),
        "negative_share": a_neg.abs().sum(1) / total,
        "nuisance_share": nuisance / total,
        "masks_at_bounds": at_bounds,
        "collapsed": mass < 0.01 * stats.total,
    }

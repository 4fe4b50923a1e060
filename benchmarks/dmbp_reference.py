"""The plain reference DMBP loop, to check and time the fast path against.

Every iteration re-runs the forward pass (at every point of the path when ``path_steps`` > 1) with the bit-exact gate
``h.detach() + (m*h - (m*h).detach())`` at every mask site (identity forward,
backward scaled by m; dmbp-method.md §2), takes ``autograd.grad(create_graph=True)``
for W_m (averaged over the path) and double-backpropagates the loss to the masks. Loss, parametrisation
and optimiser are the fast path's own (:mod:`dmbp_onnx.methods.dmbp.objectives`, Adam).
"""

from __future__ import annotations

import torch

from dmbp_onnx.methods.dmbp import auto_lr
from dmbp_onnx.methods.dmbp.optimiser import Adam
from dmbp_onnx.methods.dmbp.objectives import SEPARABLE, BoxMasks, PlainStats, ThreeWayMasks, loss_per_image, loss_per_set
from dmbp_onnx.methods.target import resolve_targets
from dmbp_onnx.twin.masks import hooked, iter_sites


#: The options of :class:`~dmbp_onnx.methods.DMBP` that the reference loop implements.
REFERENCE_OPTIONS = ("iterations", "lr", "objective", "alpha", "lam", "beta", "lam_neg", "path_steps")


def reference_options(method) -> dict:
    """The options of a DMBP instance that :func:`reference_dmbp` takes; the instance must use the rule
    the loop implements, the plain gradient, on both mask sets (ValueError otherwise)."""
    rules = {method.options.get("rule", "gradient"), method.options.get("negative_rule", "gradient")}
    if rules != {"gradient"}:
        raise ValueError(f"the reference loop implements rule='gradient', not {sorted(rules)}")
    if method.options.get("regions", 1) != 1:
        raise ValueError(f"the reference loop has per-filter masks (regions=1), not regions={method.options['regions']}")
    return {k: method.options[k] for k in REFERENCE_OPTIONS}


def reference_dmbp(
    twin,
    x: torch.Tensor,
    target=None,
    iterations: int = 3,
    lr: float | str = "auto",
    objective: str = "perset",
    alpha: float = 1.0,
    lam: float = 0.0,
    beta: float = 10.0,
    lam_neg: float | None = None,
    path_steps: int = 2,
) -> dict:
    """Run the reference loop on the twin's module (CPU) for the batch ``x``; options and defaults
    as :class:`~dmbp_onnx.methods.DMBP`'s.

    Returns
    -------
    dict
        ``w_pos``, ``w_neg`` ``(N, ...)``, ``masks_pos`` / ``masks_neg`` (site -> ``(N, C)``),
        ``loss_history`` ``(iterations, N)``.
    """
    module = twin.module
    n, k = x.shape[0], path_steps
    alphas = [1.0] if k == 1 else [(i + 0.5) / k for i in range(k)]
    points = torch.cat([a * x for a in alphas])  # (path point, image)
    axis = twin.channel_axis
    names = {id(site): name for name, site in iter_sites(module)}
    channels = {name: site.channels for name, site in iter_sites(module)}
    current: dict[str, torch.Tensor] = {}

    def gate(site, h):
        m = current.get(names[id(site)])
        if m is None:
            return h
        mh = h * m.reshape(site.broadcast_shape(h.dim(), h.shape[0]))
        return h.detach() + (mh - mh.detach())

    def pixels(a):
        return (a.sum(axis) if axis is not None else a).flatten(1)

    def mapping(masks, create_graph):
        """The path mean of each set, ``(2, n, ...)``; each set is its own batch of ``k n``."""
        _, sel = resolve_targets(module(x).detach(), target)
        selector = sel.repeat(k, *([1] * (sel.dim() - 1)))
        sets = []
        for s in range(2):
            current.clear()
            current.update({name: m[s * k * n : (s + 1) * k * n] for name, m in masks.items()})
            inp = points.detach().requires_grad_(True)
            with hooked(module, gate):
                out = module(inp)
            out = out[0] if isinstance(out, tuple) else out
            (w,) = torch.autograd.grad(out, inp, grad_outputs=selector, create_graph=create_graph)
            sets.append(w.unflatten(0, (k, n)).mean(0))
        return torch.stack(sets)

    def rows(masks):
        return {name: m.unsqueeze(1).expand(2, k, *m.shape[1:]).reshape(2 * k * n, -1) for name, m in masks.items()}

    w = mapping({}, False)[0]
    stats = PlainStats.of(w * x, pixels(w * x))
    if lr == "auto":
        lr = auto_lr(len(channels))
    param = ThreeWayMasks() if objective == "threeway" else BoxMasks()
    theta = param.init(n, channels, x.device)
    optimiser = Adam(list(theta.values()), lr=lr)
    history = []
    iterates = []  # (loss, mappings (2, n, ...), masks) of every evaluated iterate
    for _ in range(iterations):
        masks = param.masks(theta)
        wm = mapping(rows(masks), True)
        a = pixels((wm * x).flatten(0, 1))
        loss = loss_per_image(objective, a[:n], a[n:], masks, stats, alpha, lam, beta, lam_neg)
        iterates.append((loss.detach(), wm.detach(), {k: m.detach().clone() for k, m in masks.items()}))
        grads = torch.autograd.grad(loss.sum(), list(theta.values()))
        for t, g in zip(theta.values(), grads):
            t.grad = g
        optimiser.step()
        param.project(theta)
        history.append(loss.detach())
    with torch.no_grad():
        masks = param.masks(theta)
    wm = mapping(rows(masks), False).detach()
    a = pixels((wm * x).flatten(0, 1))
    loss = loss_per_image(objective, a[:n], a[n:], masks, stats, alpha, lam, beta, lam_neg).detach()
    iterates.append((loss, wm, {k: m.detach() for k, m in masks.items()}))
    # The returned iterate is the lowest-loss one among those whose maps have not collapsed (the
    # first on ties; the first iterate is always eligible): per (set, image) for the objectives that
    # are sums of per-set terms, where a set's map must also keep 1 % of the per-pixel mass unless the
    # plain map has under 10 % of its mass of that sign; else per image.
    per_set = objective in SEPARABLE

    def dead_of(wm):
        together = (wm * x).abs().flatten(2).sum(2).sum(0) < 0.01 * stats.total
        if not per_set:
            return together[None]
        mass = torch.stack([pixels(wm[s] * x).abs().sum(1) for s in range(2)])
        plain = torch.stack([stats.positive_mass, stats.negative_mass])
        keep = (mass / mass.sum(0).clamp_min(1e-30) >= 0.01) | (plain < 0.1 * plain.sum(0))
        return together[None] | ~keep

    def losses_of(loss, wm, masks):
        if not per_set:
            return loss[None]
        a = pixels((wm * x).flatten(0, 1))
        return loss_per_set(objective, a[:n], a[n:], masks, stats, alpha, lam, lam_neg)

    losses = torch.stack([losses_of(*it) for it in iterates])  # (iterate, g, n)
    dead = torch.stack([dead_of(it[1]) for it in iterates])
    dead[0] = False
    chosen = losses.masked_fill(dead, float("inf")).argmin(0).expand(2, n)  # (set, image)
    wm = torch.stack([torch.stack([iterates[int(chosen[s, i])][1][s, i] for i in range(n)]) for s in range(2)])
    masks = {
        k: torch.stack([torch.stack([iterates[int(chosen[s, i])][2][k][s, i] for i in range(n)]) for s in range(2)])
        for k in masks
    }
    return {
        "w_pos": wm[0],
        "w_neg": wm[1],
        "masks_pos": {k: m[0] for k, m in masks.items()},
        "masks_neg": {k: m[1] for k, m in masks.items()},
        "loss_history": torch.stack(history) if history else torch.zeros(0, n),
    }

"""The plain reference DMBP loop, to check and time the fast path against.

Every iteration re-runs the forward pass with the bit-exact gate
``h.detach() + (m*h - (m*h).detach())`` at every mask site (identity forward,
backward scaled by m; dmbp-method.md §2), takes ``autograd.grad(create_graph=True)``
for W_m and double-backpropagates the loss to the masks. Loss, parametrisation
and optimiser are the fast path's own (:mod:`dmbp_onnx.methods.objectives`, Adam).
"""

from __future__ import annotations

import torch

from dmbp_onnx.methods.objectives import BoxMasks, PlainStats, ThreeWayMasks, loss_per_image
from dmbp_onnx.methods.target import resolve_targets
from dmbp_onnx.twin.masks import hooked, iter_sites


def reference_dmbp(
    twin,
    x: torch.Tensor,
    target=None,
    iterations: int = 100,
    lr: float = 0.05,
    objective: str = "r1",
    alpha: float = 1.0,
    lam: float = 5.0,
    beta: float = 10.0,
) -> dict:
    """Run the reference loop on the twin's module (CPU) for the batch ``x``.

    Returns
    -------
    dict
        ``w_pos``, ``w_neg`` ``(N, ...)``, ``masks_pos`` / ``masks_neg`` (site -> ``(N, C)``),
        ``loss_history`` ``(iterations, N)``.
    """
    module = twin.module
    n = x.shape[0]
    xx = torch.cat([x, x])
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
        current.clear()
        current.update(masks)
        inp = xx.detach().requires_grad_(True)
        with hooked(module, gate):
            out = module(inp)
        out = out[0] if isinstance(out, tuple) else out
        _, sel = resolve_targets(out.detach()[:n], target)
        (w,) = torch.autograd.grad(out, inp, grad_outputs=torch.cat([sel, sel]), create_graph=create_graph)
        return w

    w = mapping({}, False)[:n]
    stats = PlainStats.of(w * x, pixels(w * x))
    param = ThreeWayMasks() if objective == "threeway" else BoxMasks()
    theta = param.init(n, channels, x.device)
    optimiser = torch.optim.Adam(list(theta.values()), lr=lr)
    history = []
    for _ in range(iterations):
        masks = param.masks(theta)
        wm = mapping({k: m.reshape(2 * n, -1) for k, m in masks.items()}, True)
        a = pixels(wm * xx)
        loss = loss_per_image(objective, a[:n], a[n:], masks, stats, alpha, lam, beta)
        grads = torch.autograd.grad(loss.sum(), list(theta.values()))
        for t, g in zip(theta.values(), grads):
            t.grad = g
        optimiser.step()
        param.project(theta)
        history.append(loss.detach())
    with torch.no_grad():
        masks = param.masks(theta)
    wm = mapping({k: m.reshape(2 * n, -1) for k, m in masks.items()}, False).detach()
    return {
        "w_pos": wm[:n],
        "w_neg": wm[n:],
        "masks_pos": {k: m[0].detach() for k, m in masks.items()},
        "masks_neg": {k: m[1].detach() for k, m in masks.items()},
        "loss_history": torch.stack(history) if history else torch.zeros(0, n),
    }

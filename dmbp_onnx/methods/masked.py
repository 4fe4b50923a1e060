"""The masked mapping W_m: the input gradient with every filter's backward signal scaled by a mask.

One forward pass at x is recorded with a gate at every mask site that is the
exact identity forward (it returns a view of its input, so nothing is
recomputed or rounded) and multiplies the incoming gradient by the mask that a
mutable holder holds *at backward time*. The retained graph then yields W_m for
any masks with one backward pass; with ``create_graph=True`` that pass is
differentiable in the masks (dmbp-method.md §2, §4). Frozen ReLU gates and
max-pool choices come from the one recorded forward, so they can never flip.
"""

from __future__ import annotations

import torch
from torch import nn

from dmbp_onnx.twin.masks import MaskSite, hooked, iter_sites


class MaskHolder:
    """Current masks per site: ``masks[site name]`` is ``(batch, channels)`` or None (= all ones)."""

    def __init__(self) -> None:
        self.masks: dict[str, torch.Tensor | None] = {}


class _MaskGate(torch.autograd.Function):
    """Identity forward; backward multiplies the gradient by the holder's current mask."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, holder: MaskHolder, key: str, site: MaskSite) -> torch.Tensor:
        ctx.holder, ctx.key, ctx.site = holder, key, site
        return h.view_as(h)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        mask = ctx.holder.masks.get(ctx.key)
        if mask is None:
            return grad, None, None, None
        shape = ctx.site.broadcast_shape(grad.dim(), grad.shape[0])
        return grad * mask.reshape(shape), None, None, None


class MaskedMapping:
    """A recorded forward pass at ``x`` that returns W_m for any masks.

    Parameters
    ----------
    module : torch.nn.Module
        The twin's module (mask sites inside); its parameters must not require grad.
    x : torch.Tensor
        The input batch, on the module's device. Not modified.
    selector : callable
        ``selector(output) -> grad_outputs`` (e.g. from :func:`resolve_targets`).

    Attributes
    ----------
    output : torch.Tensor
        The (detached) first output of the one forward pass.
    grad_outputs : torch.Tensor
        The selector the output is contracted with.
    site_names : list of str
        Mask sites of ``module`` in graph order.
    channels : dict of str to int
        Filters per site.
    """

    def __init__(self, module: nn.Module, x: torch.Tensor, selector) -> None:
        self.holder = MaskHolder()
        names = {id(site): name for name, site in iter_sites(module)}
        self.site_names = list(names.values())
        self.channels = {name: site.channels for name, site in iter_sites(module)}
        self.x = x.detach().requires_grad_(True)

        def gate(site: MaskSite, h: torch.Tensor) -> torch.Tensor:
            return _MaskGate.apply(h, self.holder, names[id(site)], site)

        with torch.enable_grad(), hooked(module, gate):
            out = module(self.x)
        self._out = out[0] if isinstance(out, tuple) else out
        self.output = self._out.detach()
        self.grad_outputs = selector(self.output)

    def __call__(self, masks: dict[str, torch.Tensor] | None, create_graph: bool = False) -> torch.Tensor:
        """W_m for ``masks`` (site name -> ``(batch, channels)``; missing sites stay at 1).

        With ``create_graph`` the result is differentiable in the masks.
        """
        self.holder.masks = dict(masks or {})
        try:
            (w,) = torch.autograd.grad(
                self._out, self.x, grad_outputs=self.grad_outputs, retain_graph=True, create_graph=create_graph
            )
        finally:
            self.holder.masks = {}
        return w

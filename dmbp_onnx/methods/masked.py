"""The masked mapping W_m and its adjoint, from ONE recorded forward pass at x.

W_m (dmbp-method.md §2) is the input gradient with every filter's backward signal
scaled by a mask. The forward pass at x is recorded once, with a gate at every
mask site that is the exact identity forward (a view of its input: nothing is
recomputed or rounded, so ReLU gates and max-pool choices are frozen for good)
and multiplies the incoming gradient by the mask a mutable holder holds *at
backward time*. Then, per iteration (§4):

* :meth:`MaskedMapping.__call__` — one backward pass of the retained graph gives
  W_m and the backward signal ``g_l`` arriving at every site;
* :meth:`MaskedMapping.adjoint` — one forward pass of the frozen, bias-free,
  masked network L_m applied to ``G = d loss / d W_m`` gives the activation
  ``a'_l`` arriving at every site, and ``d loss / d m_l[k] = sum(g_l * a'_l)``
  over the positions of filter k.

Neither pass computes weight gradients. The adjoint pass walks the twin's fx
graph: affine nodes (Conv, Gemm, BatchNormalization, Add, pooling by averages,
reshapes, ...) map a tangent ``t`` to ``f(t) - f(0)`` (``f(0)``, the bias, is
computed once); every other node (ReLU, MaxPool, Clip, Max, ...) takes its exact
Jacobian-vector product at the recorded primal inputs.
"""

from __future__ import annotations

import torch
from torch import fx, nn
from torch.fx.node import map_arg

from dmbp_onnx.twin.masks import MaskSite

#: ONNX ops that are affine in their data inputs (the other inputs being constants).
AFFINE_OPS = frozenset(
    {
        "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "Add", "Sub", "Sum", "Neg",
        "AveragePool", "GlobalAveragePool", "ReduceMean", "ReduceSum", "Concat", "Pad", "Reshape",
        "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout",
    }
)  # fmt: skip


class MaskHolder:
    """Masks per site at backward time (``(batch, channels)``; a missing site counts as 1),
    and the backward signals captured before masking."""

    def __init__(self) -> None:
        self.masks: dict[str, torch.Tensor] = {}
        self.signals: dict[str, torch.Tensor] = {}


class _MaskGate(torch.autograd.Function):
    """Identity forward; backward records the incoming gradient and multiplies it by the mask."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, holder: MaskHolder, key: str, site: MaskSite) -> torch.Tensor:
        ctx.holder, ctx.key, ctx.site = holder, key, site
        return h.view_as(h)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.holder.signals[ctx.key] = grad
        mask = ctx.holder.masks.get(ctx.key)
        if mask is None:
            return grad, None, None, None
        return grad * mask.reshape(ctx.site.broadcast_shape(grad.dim(), grad.shape[0])), None, None, None


def _reduce(t: torch.Tensor, site: MaskSite) -> torch.Tensor:
    """Sum ``t`` over every axis but the batch and the site's filter axis: ``(batch, channels)``."""
    axis = site.channel_axis % t.dim()
    dims = [d for d in range(1, t.dim()) if d != axis]
    return t.sum(dims) if dims else t


class MaskedMapping:
    """A recorded forward pass of the twin's module at ``x``: W_m and its adjoint for any masks.

    Parameters
    ----------
    module : torch.fx.GraphModule
        The twin's module (mask sites inside); parameters must not require grad.
    x : torch.Tensor
        The input batch on the module's device (not modified).
    selector : callable
        ``selector(output) -> grad_outputs`` (e.g. built on :func:`resolve_targets`).
    ops : dict of str to str, optional
        Submodule name -> ONNX op type; needed by :meth:`adjoint` only.

    Attributes
    ----------
    output : torch.Tensor
        The (detached) first output of the one forward pass.
    grad_outputs : torch.Tensor
        The selector the output is contracted with.
    site_names : list of str
        Mask sites in graph order.
    channels : dict of str to int
        Filters per site.
    signals : dict of str to torch.Tensor
        After a call: the backward signal arriving at each site (before its mask).
    """

    def __init__(self, module: fx.GraphModule, x: torch.Tensor, selector, ops: dict[str, str] | None = None) -> None:
        self.module, self.ops = module, dict(ops or {})
        self.holder = MaskHolder()
        self.x = x.detach().requires_grad_(True)
        self.sites: dict[str, MaskSite] = {}
        self.primal: dict[fx.Node, object] = {}
        self._bias: dict[fx.Node, torch.Tensor | None] = {}
        self._data: set[fx.Node] = set()
        self._last_use: dict[fx.Node, list[fx.Node]] = {}
        seen: set[fx.Node] = set()
        for node in reversed(list(module.graph.nodes)):
            for used in node.all_input_nodes:
                if used not in seen:
                    seen.add(used)
                    self._last_use.setdefault(node, []).append(used)
        out = None
        with torch.enable_grad():
            for node in module.graph.nodes:
                if node.op == "output":
                    out = map_arg(node.args[0], self.primal.__getitem__)
                    break
                self.primal[node] = self._run(node)
                if _carries_data(node, self.primal[node], self._data):
                    self._data.add(node)
        self._out = out[0] if isinstance(out, tuple) else out
        self._keep_needed_primals()
        self.site_names = list(self.sites)
        self.channels = {k: s.channels for k, s in self.sites.items()}
        self.output = self._out.detach()
        self.grad_outputs = selector(self.output)

    def _keep_needed_primals(self) -> None:
        """Drop recorded values the adjoint never reads (it reads constants, shapes and the
        inputs of nodes it differentiates by JVP); the retained graph keeps what backward needs."""
        self._gates: dict[fx.Node, torch.Tensor] = {}
        self._linear: dict[fx.Node, tuple] = {}
        if not self.ops:  # no op types: the adjoint takes every node's JVP from its primal inputs
            return
        needed = {node for node in self.primal if node not in self._data}
        for node in self._data:
            if node.op == "call_module" and not isinstance(self.module.get_submodule(node.target), MaskSite):
                op = self.ops.get(node.target)
                if op == "Relu":  # its JVP only needs the on/off gate: keep 1 byte per value
                    self._gates[node] = self.primal[node].detach() > 0
                elif op not in AFFINE_OPS:
                    self._linearise(node, needed)
        self.primal = {k: v for k, v in self.primal.items() if k in needed}

    def _linearise(self, node: fx.Node, needed: set) -> None:
        """Record a node's Jacobian-vector product as the transpose of its recorded VJP.

        ``v(u) = J^T u`` is built once with ``create_graph`` (u a zero leaf); then
        ``J t = d <v(u), t> / d u`` reuses the node's saved state (e.g. max-pool indices)
        instead of recomputing the node. Nodes with several outputs keep their primal
        inputs for :func:`torch.func.jvp` instead.
        """
        out = self.primal[node]
        data = [a for a in node.all_input_nodes if a in self._data]
        inputs = [self.primal[a] for a in data]
        if not isinstance(out, torch.Tensor) or not all(isinstance(t, torch.Tensor) for t in inputs):
            needed.update(node.all_input_nodes)
            return
        u = torch.zeros_like(out, requires_grad=True)
        with torch.enable_grad():
            vjps = torch.autograd.grad(out, inputs, u, retain_graph=True, create_graph=True, allow_unused=True)
        self._linear[node] = (u, data, vjps)

    def _run(self, node: fx.Node):
        args = map_arg(node.args, self.primal.__getitem__)
        kwargs = map_arg(node.kwargs, self.primal.__getitem__)
        if node.op == "placeholder":
            return self.x
        if node.op == "call_function":
            return node.target(*args, **kwargs)
        sub = self.module.get_submodule(node.target)
        if isinstance(sub, MaskSite):
            self.sites[node.target] = sub
            return _MaskGate.apply(args[0], self.holder, node.target, sub)
        return sub(*args, **kwargs)

    def __call__(self, masks: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """W_m for ``masks`` (site name -> ``(batch, channels)``; missing sites stay at 1).

        Afterwards :attr:`signals` holds the backward signal arriving at every site.
        """
        self.holder.masks = dict(masks or {})
        self.holder.signals = {}
        try:
            (w,) = torch.autograd.grad(self._out, self.x, grad_outputs=self.grad_outputs, retain_graph=True)
        finally:
            self.holder.masks = {}
        self.signals = self.holder.signals
        return w

    def mask_gradients(self, tangent: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``d <W_m, tangent> / d m`` per site, ``(batch, channels)``, after a ``__call__`` with ``masks``.

        One forward pass of the frozen, bias-free network L_m (the masks applied) on
        ``tangent``; each site's product with its backward signal is reduced on the way.
        """
        grads: dict[str, torch.Tensor] = {}

        def at_site(name: str, arriving: torch.Tensor) -> None:
            grads[name] = _reduce(arriving * self.signals.pop(name), self.sites[name])

        with torch.no_grad():
            self.adjoint(tangent, masks, at_site)
        return grads

    def adjoint(self, tangent: torch.Tensor, masks: dict[str, torch.Tensor], at_site) -> None:
        """Run L_m on ``tangent``; call ``at_site(name, activation)`` as each site is reached
        (with the activation arriving there, before its mask). Tangents are freed after their last use."""
        tangents: dict[fx.Node, object] = {}
        for node in self.module.graph.nodes:
            if node.op == "output":
                break
            if node.op == "placeholder":
                tangents[node] = tangent
            elif node in self._data:
                tangents[node] = self._tangent(node, tangents, masks, at_site)
            for done in self._last_use.get(node, ()):
                tangents.pop(done, None)

    def _tangent(self, node: fx.Node, tangents: dict, masks: dict[str, torch.Tensor], at_site):
        if node.op == "call_function":
            return node.target(*map_arg(node.args, lambda a: tangents[a] if a in tangents else self.primal[a]))
        sub = self.module.get_submodule(node.target)
        if isinstance(sub, MaskSite):
            t = tangents[node.args[0]]
            at_site(node.target, t)
            mask = masks.get(node.target)
            return t if mask is None else t * mask.reshape(sub.broadcast_shape(t.dim(), t.shape[0]))
        if self.ops.get(node.target) in AFFINE_OPS:
            out = sub(*map_arg(node.args, lambda a: tangents[a] if a in tangents else self.primal[a]))
            bias = self._affine_bias(node, sub, tangents)
            return out if bias is None else out - bias
        if node in self._gates:
            return tangents[node.args[0]] * self._gates[node]
        if node in self._linear:
            u, data, vjps = self._linear[node]
            pairs = [(v, tangents[a]) for a, v in zip(data, vjps) if v is not None]
            with torch.enable_grad():
                (out,) = torch.autograd.grad(
                    [v for v, _ in pairs], u, [t for _, t in pairs], retain_graph=True
                )
            return out
        return self._jvp(node, sub, tangents)

    def _affine_bias(self, node: fx.Node, sub: nn.Module, tangents: dict) -> torch.Tensor | None:
        """``f(0)`` of an affine node (None when it is zero), computed once."""
        if node not in self._bias:
            with torch.no_grad():
                args = map_arg(node.args, lambda a: torch.zeros_like(tangents[a]) if a in tangents else self.primal[a])
                zero = sub(*args)
            # f(0) does not depend on the image: keep one row, broadcast over the batch
            self._bias[node] = zero[:1].clone() if bool(zero.any()) else None
        return self._bias[node]

    def _jvp(self, node: fx.Node, sub: nn.Module, tangents: dict) -> torch.Tensor:
        """Exact JVP of a node at its recorded primal inputs, in the direction of the data tangents."""
        positions = [i for i, a in enumerate(node.args) if isinstance(a, fx.Node) and a in tangents]
        primals = tuple(self.primal[node.args[i]].detach() for i in positions)
        directions = tuple(tangents[node.args[i]] for i in positions)

        def f(*values):
            args = list(map_arg(node.args, lambda a: self.primal[a].detach()))
            for i, v in zip(positions, values):
                args[i] = v
            return sub(*args)

        _, out = torch.func.jvp(f, primals, directions)
        return out


def _carries_data(node: fx.Node, value: object, data: set) -> bool:
    """True for nodes on the input's data path; integer shape arithmetic (Shape, Cast to int,
    Gather on shapes) depends on the input only through its size and is treated as a constant."""
    if node.op != "placeholder" and not any(a in data for a in node.all_input_nodes):
        return False
    values = value if isinstance(value, (tuple, list)) else (value,)
    return any(isinstance(v, torch.Tensor) and v.is_floating_point() for v in values)

"""The masked mapping W_m and its adjoint, from ONE forward pass at x.

W_m (dmbp-method.md §2) is the input gradient with every filter's backward signal
scaled by a mask. The forward pass at x is run once and keeps only what the two
linear passes of an iteration need (§4): ReLU gates as 0/1 values (multiplying by
them is much faster than masking with booleans), max-pool selections as indices, the
input shapes of convolutions; the activations themselves are freed as soon as the
forward pass is done with them. Per iteration:

* :meth:`MaskedMapping.__call__` — one transpose (backward) pass, walking the
  twin's fx graph backwards, gives W_m and the backward signal ``g_l`` arriving at
  every site (before its mask);
* :meth:`MaskedMapping.adjoint` — one forward pass of the frozen, bias-free,
  masked network L_m applied to ``G = d loss / d W_m`` gives the activation
  ``a'_l`` arriving at every site, and ``d loss / d m_l[k] = sum(g_l * a'_l)``
  over the positions of filter k.

Convolutions, linear layers, ReLU, 2-D max-pooling (overlapping windows included:
repeated selections are summed), Flatten and Reshape have hand-written transposes
(the convolution's is PyTorch's own ``convolution_backward``, input gradient only,
so the plain gradient is bit-identical to autograd's). Any other node keeps its
own small autograd graph from the forward pass, and its transpose is autograd's
VJP there. No weight gradient is ever computed.

The adjoint pass maps a tangent ``t`` through affine nodes (Conv, Gemm,
BatchNormalization, Add, pooling by averages, reshapes, ...) as ``f(t) - f(0)``
(``f(0)``, the bias, computed once; convolutions and linear layers simply drop
their bias), through ReLU and max-pool by the recorded gates and selections, and
through every other node (Clip, Max, ...) by its exact Jacobian-vector product.
Products and masks are applied in place wherever the tensor is the pass's own.
"""

from __future__ import annotations

import copy
import operator
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.node import map_arg

from dmbp_onnx.errors import UnsupportedModelError
from dmbp_onnx.twin.masks import MaskSite
from dmbp_onnx.twin.ops.shape import Flatten, Reshape

#: ONNX ops that are affine in their data inputs (the other inputs being constants).
AFFINE_OPS = frozenset(
    {
        "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "Add", "Sub", "Sum", "Neg",
        "AveragePool", "GlobalAveragePool", "ReduceMean", "ReduceSum", "Concat", "Pad", "Reshape",
        "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout",
    }
)  # fmt: skip

_CONV_FN = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}


def _reduce(t: torch.Tensor, site: MaskSite) -> torch.Tensor:
    """Sum ``t`` over every axis but the batch and the site's filter axis: ``(batch, channels)``."""
    axis = site.channel_axis % t.dim()
    dims = [d for d in range(1, t.dim()) if d != axis]
    dtype = torch.promote_types(t.dtype, torch.float32)  # reduced-precision products sum in fp32
    return t.sum(dims, dtype=dtype) if dims else t.to(dtype)


class MaskedMapping:
    """One forward pass of the twin's module at ``x``: W_m and its adjoint for any masks.

    Parameters
    ----------
    module : torch.fx.GraphModule
        The twin's module (mask sites inside); parameters must not require grad.
    x : torch.Tensor
        The input batch on the module's device (not modified).
    selector : callable
        ``selector(output) -> grad_outputs`` (e.g. built on :func:`resolve_targets`).
    ops : dict of str to str, optional
        Submodule name -> ONNX op type; without it the adjoint takes every node's exact
        JVP at the recorded primal inputs (which are then all kept).
    dtype : torch.dtype, optional
        Precision of the two linear passes (default: the input's). ``torch.bfloat16`` runs
        convolutions, linear layers, gates and selections in bfloat16 (about twice as fast on a
        CPU with AVX512-BF16 or on a GPU); the forward pass at ``x`` — every gate and max-pool
        choice — stays the twin's own, and nodes without a hand-written rule run in the input's
        precision. W_m is returned in the input's dtype.
    channels_last : bool
        Run the two linear passes on 4-D activations in channels-last layout (the forward
        pass at ``x``, hence every gate and max-pool choice, stays the twin's own). Measured
        on CPU: iterations ~6 % faster; the results then equal the default layout's up to
        the convolutions' rounding, not bit for bit (W_m for unit masks is no longer
        autograd's gradient exactly), so it is off by default.

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

    def __init__(
        self,
        module: fx.GraphModule,
        x: torch.Tensor,
        selector,
        ops: dict[str, str] | None = None,
        channels_last: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        self.module, self.ops, self.channels_last = module, dict(ops or {}), bool(channels_last)
        self.dtype = dtype or x.dtype
        self._weights: dict[nn.Module, torch.Tensor] = {}
        self.x = x.detach()
        self.sites: dict[str, MaskSite] = {}
        self.primal: dict[fx.Node, object] = {}
        self.signals: dict[str, torch.Tensor] = {}
        self._rule: dict[fx.Node, tuple] = {}
        self._bias: dict[fx.Node, torch.Tensor | None] = {}
        self._linear: dict[fx.Node, tuple] = {}
        self._data: set[fx.Node] = set()
        self._inputs: list[fx.Node] = []
        self._keep: set[fx.Node] = set()  # data nodes whose value the adjoint reads (JVP inputs)
        self._owned: set[str] = set()  # sites whose signal no other tensor aliases
        last_use: dict[fx.Node, list[fx.Node]] = {}
        seen: set[fx.Node] = set()
        for node in reversed(list(module.graph.nodes)):
            for used in node.all_input_nodes:
                if used not in seen:
                    seen.add(used)
                    last_use.setdefault(node, []).append(used)
        self._last_use = last_use
        first = next(n for n in module.graph.nodes if n.op == "output").args[0]
        self._out_node: fx.Node = first[0] if isinstance(first, (tuple, list)) else first
        with torch.no_grad():
            for node in module.graph.nodes:
                if node.op == "output":
                    out = self.primal[self._out_node]
                    break
                self.primal[node] = self._record(node)
                if _carries_data(node, self.primal[node], self._data):
                    self._data.add(node)
                else:
                    self._rule.pop(node, None)
                    self._linear.pop(node, None)
                for done in last_use.get(node, ()):
                    if done in self._data and done not in self._keep and self.ops and done is not self._out_node:
                        del self.primal[done]
        self._order = [n for n in module.graph.nodes if n in self._rule]
        self.site_names = list(self.sites)
        self.channels = {k: s.channels for k, s in self.sites.items()}
        self.output = out.detach()
        if self.ops:
            self.primal.pop(self._out_node, None)
        self.grad_outputs = selector(self.output)

    def _record(self, node: fx.Node):
        """Run one node of the forward pass; for a data node, record what its transpose needs."""
        if node.op == "placeholder":
            self._inputs.append(node)
            return self.x
        args = map_arg(node.args, self.primal.__getitem__)
        kwargs = map_arg(node.kwargs, self.primal.__getitem__)
        data = [a for a in node.all_input_nodes if a in self._data]
        if node.op == "call_function":
            if not data:
                return node.target(*args, **kwargs)
            if node.target is operator.getitem and isinstance(args[0], (tuple, list)):
                self._rule[node] = ("getitem", node.args[0], args[1])
                return args[0][args[1]]
            return self._fallback(node, lambda *a, **k: node.target(*a, **k), data)
        sub = self.module.get_submodule(node.target)
        if not data:
            return sub(*args, **kwargs)
        h = args[0] if len(data) == 1 and node.args and node.args[0] is data[0] and not kwargs else None
        kind = type(sub)
        if isinstance(sub, MaskSite):
            self.sites[node.target] = sub
            self._rule[node] = ("site", node.target, sub)
            return h if h is not None else args[0]
        if h is None or not isinstance(h, torch.Tensor):
            return self._fallback(node, sub, data)
        if kind is nn.ReLU:
            out = sub(h)
            gate = (out > 0).to(self.dtype)  # multiplying by it is faster than masked_fill or bool
            self._rule[node] = ("relu", gate.contiguous(memory_format=self._format(gate)))
            return out
        if kind in _CONV_FN and sub.padding_mode == "zeros" and not isinstance(sub.padding, str) and len(args) == 1:
            self._rule[node] = ("conv", sub, h.shape)
            return sub(h)
        if kind is nn.Linear and len(args) == 1:
            self._rule[node] = ("linear", sub)
            return sub(h)
        if kind is nn.MaxPool2d and not sub.return_indices and h.dim() == 4 and len(args) == 1:
            out, idx = F.max_pool2d(h, sub.kernel_size, sub.stride, sub.padding, sub.dilation, sub.ceil_mode, True)
            self._rule[node] = ("pool", idx.contiguous(memory_format=self._format(idx)), h.shape)
            return out
        if kind in (Flatten, Reshape):
            out = sub(*args)
            if out.numel() == h.numel():
                self._rule[node] = ("reshape", h.shape)
                return out
        return self._fallback(node, sub, data)

    def _fallback(self, node: fx.Node, fn, data: list[fx.Node]):
        """Run ``node`` on detached leaf copies of its data inputs, keeping its own autograd graph."""
        leaves: dict[fx.Node, torch.Tensor] = {}
        for a in data:
            value = self.primal[a]
            if not isinstance(value, torch.Tensor):
                raise UnsupportedModelError(
                    f"DMBP cannot transpose node {node.name!r}: its input {a.name!r} is a {type(value).__name__}"
                )
            leaves[a] = value.detach().requires_grad_(True)
        with torch.enable_grad():
            args = map_arg(node.args, lambda a: leaves.get(a, self.primal[a]))
            kwargs = map_arg(node.kwargs, lambda a: leaves.get(a, self.primal[a]))
            out = fn(*args, **kwargs)
        self._rule[node] = ("autograd", out, list(leaves), list(leaves.values()))
        single = isinstance(out, torch.Tensor)
        if self.ops and node.op == "call_module" and self.ops.get(node.target) not in AFFINE_OPS:
            if single and out.requires_grad:  # the adjoint reuses this graph: J t = d <J^T u, t> / d u
                u = torch.zeros_like(out, requires_grad=True)
                with torch.enable_grad():
                    vjps = torch.autograd.grad(out, list(leaves.values()), u, create_graph=True, allow_unused=True)
                self._linear[node] = (u, list(leaves), vjps)
            else:  # several outputs (or none differentiable): exact JVP at the primal inputs
                self._keep.update(node.all_input_nodes)
        if single:
            return out.detach()
        return type(out)(o.detach() if isinstance(o, torch.Tensor) else o for o in out)

    def fork(self) -> "MaskedMapping":
        """A mapping sharing this one's recorded forward pass, with its own per-call state.

        The recorded gates, selections and autograd graphs are only read by the two
        passes, so the fork gives the same results at no extra forward pass or memory;
        its :attr:`signals` (set by a call, consumed by :meth:`mask_gradients`) stay apart
        from this mapping's, so the two can alternate calls with different masks.
        """
        other = copy.copy(self)
        other.signals, other._owned = {}, set()
        return other

    def __call__(self, masks: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """W_m for ``masks`` (site name -> ``(batch, channels)``; missing sites stay at 1).

        Afterwards :attr:`signals` holds the backward signal arriving at every site.
        """
        masks = masks or {}
        self.signals, self._owned = {}, set()
        grads: dict[fx.Node, object] = {self._out_node: self.grad_outputs.to(self.dtype)}
        fresh: set[fx.Node] = set()
        for node in reversed(self._order):
            g = grads.pop(node, None)
            if g is None:
                continue
            for a, ga, new in self._transpose(node, g, node in fresh, masks):
                if a not in self._data or ga is None:
                    continue
                if isinstance(ga, tuple):  # (index, gradient) into a node with several outputs
                    slots = grads.setdefault(a, {})
                    slots[ga[0]] = slots[ga[0]] + ga[1] if ga[0] in slots else ga[1]
                elif a in grads:
                    grads[a] = grads[a] + ga
                    fresh.add(a)
                else:
                    grads[a] = ga
                    if new:
                        fresh.add(a)
        found = [grads[p] for p in self._inputs if p in grads]
        if not found:
            return torch.zeros_like(self.x)
        w = found[0] if len(found) == 1 else sum(found[1:], found[0])
        return w.to(self.x.dtype).contiguous()

    def _format(self, t: torch.Tensor) -> torch.memory_format:
        """The layout the passes use for ``t``."""
        return torch.channels_last if self.channels_last and t.dim() == 4 else torch.contiguous_format

    def _transpose(self, node: fx.Node, g, owned: bool, masks: dict[str, torch.Tensor]):
        """``(input node, gradient, freshly allocated)`` for each data input of ``node``."""
        rule = self._rule[node]
        kind, src = rule[0], node.args[0] if node.args else None
        if kind == "site":
            self.signals[rule[1]] = g
            mask = masks.get(rule[1])
            if mask is None:
                return [(src, g, False)]
            self._owned.add(rule[1])  # the masked signal passed on is a new tensor
            return [(src, g * mask.to(g.dtype).reshape(rule[2].broadcast_shape(g.dim(), g.shape[0])), True)]
        if kind in ("relu", "conv", "linear", "pool") and g.dtype != self.dtype:
            g, owned = g.to(self.dtype), True
        if kind == "relu":
            return [(src, g.mul_(rule[1]) if owned else g * rule[1], True)]
        if kind == "conv":
            sub, shape = rule[1], rule[2]
            dims = len(shape) - 2
            layout = self._format(g)
            g = g.contiguous(memory_format=layout)
            # only its shape and layout are read (an expanded one would be copied)
            shaped = torch.empty(shape, dtype=g.dtype, device=g.device, memory_format=layout)
            out = torch.ops.aten.convolution_backward(
                g, shaped, self._weight(sub), None, sub.stride, sub.padding, sub.dilation, False, [0] * dims, sub.groups,
                [True, False, False],
            )[0]  # fmt: skip
            return [(src, out, True)]
        if kind == "linear":
            weight = self._weight(rule[1])
            return [(src, g.mm(weight) if g.dim() == 2 else g.matmul(weight), True)]
        if kind == "pool":  # scatter-add: overlapping windows may select a value repeatedly
            idx, shape = rule[1], rule[2]
            last = self.channels_last
            flat_g, dim = _spatial(g.contiguous(memory_format=self._format(g)), last)
            flat_i, _ = _spatial(idx, last)
            size = list(flat_i.shape)
            size[dim] = shape[2] * shape[3]
            flat = g.new_zeros(size).scatter_add_(dim, flat_i, flat_g)
            return [(src, _unspatial(flat, shape, last), True)]
        if kind == "reshape":
            return [(src, g.reshape(rule[1]), False)]
        if kind == "getitem":
            return [(rule[1], (rule[2], g), False)]
        _, out, inputs, leaves = rule
        pairs = [(out[i], v) for i, v in g.items()] if isinstance(g, dict) else [(out, g)]
        pairs = [(o, v) for o, v in pairs if o.requires_grad]
        if not pairs:
            return []
        found = torch.autograd.grad(
            [o for o, _ in pairs], leaves, [v.to(o.dtype) for o, v in pairs], retain_graph=True, allow_unused=True
        )
        return [(a, v, False) for a, v in zip(inputs, found)]

    def _weight(self, sub: nn.Module) -> torch.Tensor:
        """A conv's or linear layer's weight in the passes' precision (cast once)."""
        if sub.weight.dtype == self.dtype:
            return sub.weight
        if sub not in self._weights:
            self._weights[sub] = sub.weight.detach().to(self.dtype)
        return self._weights[sub]

    def mask_gradients(self, tangent: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``d <W_m, tangent> / d m`` per site, ``(batch, channels)``, after a ``__call__`` with ``masks``.

        One forward pass of the frozen, bias-free network L_m (the masks applied) on
        ``tangent``; each site's product with its backward signal is reduced on the way
        (in place in the signal, which is consumed).
        """
        grads: dict[str, torch.Tensor] = {}

        def at_site(name: str, arriving: torch.Tensor) -> None:
            signal = self.signals.pop(name)
            product = signal.mul_(arriving) if name in self._owned else signal * arriving
            grads[name] = _reduce(product, self.sites[name])

        with torch.no_grad():
            self.adjoint(tangent, masks, at_site)
        return grads

    def adjoint(self, tangent: torch.Tensor, masks: dict[str, torch.Tensor], at_site) -> None:
        """Run L_m on ``tangent``; call ``at_site(name, activation)`` as each site is reached
        (with the activation arriving there, before its mask; it is only valid during the call, as
        the mask is then applied to it in place). Tangents are freed after their last use."""
        tangents: dict[fx.Node, object] = {}
        fresh: set[fx.Node] = set()  # tangents allocated here, read by one node only
        for node in self.module.graph.nodes:
            if node.op == "output":
                break
            if node.op == "placeholder":
                tangents[node] = tangent.to(self.dtype).contiguous(memory_format=self._format(tangent))
            elif node in self._data:
                tangents[node], new = self._tangent(node, tangents, fresh, masks, at_site)
                if new and len(node.users) == 1:
                    fresh.add(node)
            for done in self._last_use.get(node, ()):
                tangents.pop(done, None)
                fresh.discard(done)

    def _tangent(self, node: fx.Node, tangents: dict, fresh: set, masks: dict[str, torch.Tensor], at_site):
        """``(tangent of node, freshly allocated)``."""
        if node.op == "call_function":
            return node.target(*map_arg(node.args, lambda a: tangents[a] if a in tangents else self.primal[a])), False
        rule = self._rule.get(node, ("",))
        kind = rule[0]
        if kind == "site":
            t = tangents[node.args[0]]
            at_site(node.target, t)
            mask = masks.get(node.target)
            if mask is None:
                return t, False
            mask = mask.to(t.dtype).reshape(rule[2].broadcast_shape(t.dim(), t.shape[0]))
            return (t.mul_(mask) if node.args[0] in fresh else t * mask), True
        if self.ops and kind in ("relu", "conv", "linear", "pool"):
            t = tangents[node.args[0]]
            if t.dtype != self.dtype:
                t = t.to(self.dtype)
            if kind == "relu":
                return (t.mul_(rule[1]) if node.args[0] in fresh else t * rule[1]), True
            if kind == "conv":
                sub, t = rule[1], t.contiguous(memory_format=self._format(t))
                weight = self._weight(sub)
                return _CONV_FN[type(sub)](t, weight, None, sub.stride, sub.padding, sub.dilation, sub.groups), True
            if kind == "linear":
                return F.linear(t, self._weight(rule[1])), True
            idx, layout = rule[1], self.channels_last
            flat_t, dim = _spatial(t.contiguous(memory_format=self._format(t)), layout)
            return _unspatial(flat_t.gather(dim, _spatial(idx, layout)[0]), idx.shape, layout), True
        sub = self.module.get_submodule(node.target)
        if self.dtype != self.x.dtype:  # no hand-written rule: run it in the recorded precision
            tangents = {a: tangents[a].to(self.x.dtype) for a in node.all_input_nodes if a in tangents}
        if self.ops.get(node.target) in AFFINE_OPS:
            out = sub(*map_arg(node.args, lambda a: tangents[a] if a in tangents else self.primal[a]))
            bias = self._affine_bias(node, sub, tangents)
            return (out, False) if bias is None else (out - bias, True)
        if node in self._linear:
            u, data, vjps = self._linear[node]
            pairs = [(v, tangents[a]) for a, v in zip(data, vjps) if v is not None]
            with torch.enable_grad():
                (out,) = torch.autograd.grad([v for v, _ in pairs], u, [t for _, t in pairs], retain_graph=True)
            return out, True
        return self._jvp(node, sub, tangents), False

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


class StackedMapping:
    """Mappings of consecutive parts of a batch, presented as one mapping of the whole batch.

    DMBP uses it for a model that declares a fixed batch: the positive and negative
    mask sets cannot then share one batch of twice the size, so each set has a mapping
    of its own at the declared batch (a :meth:`MaskedMapping.fork` of the other's).
    Masks and tangents are split along the batch axis, results concatenated.

    Parameters
    ----------
    parts : sequence of MaskedMapping
        The mappings, in batch order, with the same mask sites.

    Attributes
    ----------
    x, output, grad_outputs : torch.Tensor
        The parts' inputs, outputs and selectors, concatenated.
    site_names : list of str
        Mask sites in graph order.
    channels : dict of str to int
        Filters per site.
    """

    def __init__(self, parts: Sequence[MaskedMapping]) -> None:
        self.parts = list(parts)
        self.sizes = [p.x.shape[0] for p in self.parts]
        self.x = torch.cat([p.x for p in self.parts])
        self.output = torch.cat([p.output for p in self.parts])
        self.grad_outputs = torch.cat([p.grad_outputs for p in self.parts])
        self.site_names, self.channels = self.parts[0].site_names, self.parts[0].channels

    def __call__(self, masks: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """W_m of the whole batch for ``masks`` (site name -> ``(batch, channels)``)."""
        return torch.cat([p(m) for p, m in zip(self.parts, self._split(masks))])

    def mask_gradients(self, tangent: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``d <W_m, tangent> / d m`` per site, ``(batch, channels)``, after a call with ``masks``."""
        found = [
            p.mask_gradients(t, m) for p, t, m in zip(self.parts, tangent.split(self.sizes), self._split(masks))
        ]  # fmt: skip
        return {k: torch.cat([f[k] for f in found]) for k in found[0]}

    def _split(self, masks: dict[str, torch.Tensor] | None) -> list[dict[str, torch.Tensor] | None]:
        """Each part's masks."""
        if not masks:
            return [masks] * len(self.parts)
        pieces = {k: m.split(self.sizes) for k, m in masks.items()}
        return [{k: v[i] for k, v in pieces.items()} for i in range(len(self.parts))]


def _spatial(t: torch.Tensor, channels_last: bool) -> tuple[torch.Tensor, int]:
    """A 4-D tensor's positions flattened, as a view: ``(N, C, H*W)`` (dim 2), or
    ``(N, H*W, C)`` (dim 1) in channels-last layout."""
    if channels_last:
        return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1]), 1
    return t.reshape(t.shape[0], t.shape[1], -1), 2


def _unspatial(flat: torch.Tensor, shape, channels_last: bool) -> torch.Tensor:
    """Inverse of :func:`_spatial` for a tensor of ``shape`` (N, C, H, W)."""
    if channels_last:
        return flat.view(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2)
    return flat.view(shape)


def _carries_data(node: fx.Node, value: object, data: set) -> bool:
    """True for nodes on the input's data path; integer shape arithmetic (Shape, Cast to int,
    Gather on shapes) depends on the input only through its size and is treated as a constant."""
    if node.op != "placeholder" and not any(a in data for a in node.all_input_nodes):
        return False
    values = value if isinstance(value, (tuple, list)) else (value,)
    return any(isinstance(v, torch.Tensor) and v.is_floating_point() for v in values)

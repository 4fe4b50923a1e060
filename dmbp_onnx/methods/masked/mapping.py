"""The masked mapping W_m and its adjoint, walked over the twin's fx graph by per-node rules."""

from __future__ import annotations

import copy
import operator
from typing import Any

import torch
from torch import fx, nn
from torch.fx.node import map_arg

from dmbp_onnx.methods.masked.autograd import AutogradRule
from dmbp_onnx.methods.masked.regions import RegionGrid
from dmbp_onnx.methods.masked.rule import Rule, rule_for
from dmbp_onnx.methods.masked.rules import GetItemRule
from dmbp_onnx.methods.masked.site import SiteRule
from dmbp_onnx.op_traits import op_traits
from dmbp_onnx.twin.masks import MaskSite


def _reduce(t: torch.Tensor, site: MaskSite) -> torch.Tensor:
    """Sum ``t`` over every axis but the batch and the site's filter axis: ``(batch, channels)``."""
    axis = site.channel_axis % t.dim()
    dims = [d for d in range(1, t.dim()) if d != axis]
    dtype = torch.promote_types(t.dtype, torch.float32)  # reduced-precision products sum in fp32
    return t.sum(dims, dtype=dtype) if dims else t.to(dtype)


class MaskedMapping:
    """One forward pass of the twin's module at ``x``: W_m and its adjoint for any masks.

    Each data node gets a :class:`~dmbp_onnx.methods.masked.rule.Rule` when the forward pass
    is recorded (chosen by its module's type, :class:`AutogradRule` otherwise); the two
    passes of an iteration only ask the rules.

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
    channels_last : bool
        Run the two linear passes on 4-D activations in channels-last layout (the forward
        pass at ``x``, hence every gate and max-pool choice, stays the twin's own). Measured
        on CPU: iterations ~6 % faster; the results then equal the default layout's up to
        the convolutions' rounding, not bit for bit (W_m for unit masks is no longer
        autograd's gradient exactly), so it is off by default.
    dtype : torch.dtype, optional
        Precision of the two linear passes (default: the input's). ``torch.bfloat16`` runs
        convolutions, linear layers, gates and selections in bfloat16 (about twice as fast on a
        CPU with AVX512-BF16 or on a GPU); the forward pass at ``x`` — every gate and max-pool
        choice — stays the twin's own, and nodes without a hand-written rule run in the input's
        precision. W_m is returned in the input's dtype.
    rules : dict, optional
        A composite: module type -> :class:`Rule` class, taking precedence over the registered
        rules (e.g. :data:`~dmbp_onnx.methods.masked.lrp.LRP_GAMMA`, LRP's Gamma rule for
        convolutions); by default every node gets its registered rule (the plain gradient).
    regions : int
        ``g``: with ``g`` > 1 every site on a 4-D activation has a mask per filter and per cell of a
        ``g x g`` grid over its spatial axes (:class:`~dmbp_onnx.methods.masked.regions.RegionGrid`;
        masks ``(batch, channels * cells)``, filter-major); other sites keep one per filter. Default 1.

    Attributes
    ----------
    output : torch.Tensor
        The (detached) first output of the one forward pass.
    grad_outputs : torch.Tensor
        The selector the output is contracted with.
    site_names : list of str
        Mask sites in graph order.
    channels : dict of str to int
        Masks per image and site: filters, or filters x cells where the site has a grid.
    grids : dict of str to RegionGrid
        The sites' region grids (``regions`` > 1).
    signals : dict of str to torch.Tensor
        After a call: the backward signal arriving at each site (before its mask).
    sites : dict of str to MaskSite
        The mask sites by submodule name.
    primal : dict
        Node -> its value at ``x``, for the nodes whose value is still needed.
    keep : set of torch.fx.Node
        Data nodes whose value the adjoint reads (JVP inputs).
    owned_signals : set of str
        After a call: the sites whose signal no other tensor aliases.
    """

    def __init__(
        self,
        module: fx.GraphModule,
        x: torch.Tensor,
        selector,
        ops: dict[str, str] | None = None,
        channels_last: bool = False,
        dtype: torch.dtype | None = None,
        rules: dict[type[nn.Module], type[Rule]] | None = None,
        regions: int = 1,
    ) -> None:
        self.module, self.ops, self.channels_last = module, dict(ops or {}), bool(channels_last)
        self.rules = dict(rules or {})
        self.regions = int(regions)
        self.grids: dict[str, RegionGrid] = {}
        self.dtype = dtype or x.dtype
        self._weights: dict[nn.Module, torch.Tensor] = {}
        self.x = x.detach()
        self.sites: dict[str, MaskSite] = {}
        self.primal: dict[fx.Node, object] = {}
        self.signals: dict[str, torch.Tensor] = {}
        self.keep: set[fx.Node] = set()
        self.owned_signals: set[str] = set()
        self._rule: dict[fx.Node, Rule] = {}
        self._bias: dict[fx.Node, torch.Tensor | None] = {}
        self._data: set[fx.Node] = set()
        self._inputs: list[fx.Node] = []
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
                for done in last_use.get(node, ()):
                    if done in self._data and done not in self.keep and self.ops and done is not self._out_node:
                        del self.primal[done]
        self._order = [n for n in module.graph.nodes if n in self._rule]
        self.site_names = list(self.sites)
        self.channels = {k: self.grids[k].channels * self.grids[k].count if k in self.grids else s.channels
                         for k, s in self.sites.items()}  # fmt: skip
        self.output = out.detach()
        if self.ops:
            self.primal.pop(self._out_node, None)
        self.grad_outputs = selector(self.output)

    def _record(self, node: fx.Node):
        """Run one node of the forward pass; for a data node, record its rule."""
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
                self._rule[node] = GetItemRule(node.args[0], args[1])
                return args[0][args[1]]
            return self._fallback(node, lambda *a, **k: node.target(*a, **k), data)
        sub = self.module.get_submodule(node.target)
        if not data:
            return sub(*args, **kwargs)
        h = args[0] if len(data) == 1 and node.args and node.args[0] is data[0] and not kwargs else None
        kind = self.rules.get(type(sub)) or rule_for(sub)
        if kind is not None and (isinstance(h, torch.Tensor) or not kind.needs_tensor):
            found = kind.record(self, node, sub, h, args)
            if found is not None:
                self._rule[node], out = found
                return out
        return self._fallback(node, sub, data)

    def _fallback(self, node: fx.Node, fn, data: list[fx.Node]):
        """Record ``node`` with :class:`AutogradRule`; its detached output."""
        self._rule[node], out = AutogradRule.run(self, node, fn, data)
        return out

    def feeding_rule(self, node: fx.Node) -> Rule | None:
        """The rule of the node whose value reaches ``node``'s first argument through mask sites only."""
        source = node.args[0] if node.args else None
        while isinstance(source, fx.Node) and isinstance(self._rule.get(source), SiteRule):
            source = source.args[0]
        return self._rule.get(source) if isinstance(source, fx.Node) else None

    def is_affine(self, node: fx.Node) -> bool:
        """Whether ``node``'s ONNX op is affine in its data inputs (its trait; False when unknown)."""
        return op_traits(self.ops.get(node.target) or "").affine

    def fork(self) -> "MaskedMapping":
        """A mapping sharing this one's recorded forward pass, with its own per-call state.

        The recorded gates, selections and autograd graphs are only read by the two
        passes, so the fork gives the same results at no extra forward pass or memory;
        its :attr:`signals` (set by a call, consumed by :meth:`mask_gradients`) stay apart
        from this mapping's, so the two can alternate calls with different masks.
        """
        other = copy.copy(self)
        other.signals, other.owned_signals = {}, set()
        return other

    def take_signals(self, other: "MaskedMapping") -> None:
        """Use ``other``'s signals of its last call as this mapping's, as if this one had made that call: a
        :meth:`fork` reads the signals of the mapping it was forked from after a call with the same masks,
        with no pass of its own. Neither mapping then consumes them in place."""
        other.owned_signals = set()
        self.signals, self.owned_signals = dict(other.signals), set()

    def __call__(self, masks: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """W_m for ``masks`` (site name -> ``(batch, channels)``; missing sites stay at 1).

        Afterwards :attr:`signals` holds the backward signal arriving at every site.
        """
        masks = masks or {}
        self.signals, self.owned_signals = {}, set()
        grads: dict[fx.Node, object] = {self._out_node: self.grad_outputs.to(self.dtype)}
        fresh: set[fx.Node] = set()
        for node in reversed(self._order):
            g = grads.pop(node, None)
            if g is None:
                continue
            for a, ga, new in self._rule[node].transpose(self, node, g, node in fresh, masks):
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

    def site_mask(self, name: str, mask: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Site ``name``'s ``(batch, channels)`` masks in ``t``'s dtype, shaped to broadcast over ``t`` (per
        filter, or per filter and region cell when the site has a :class:`RegionGrid`)."""
        mask = mask.to(t.dtype)
        grid = self.grids.get(name)
        if grid is not None:
            return grid.expand(mask)
        return mask.reshape(self.sites[name].broadcast_shape(t.dim(), t.shape[0]))

    def layout(self, t: torch.Tensor) -> torch.memory_format:
        """The memory layout the passes use for ``t``."""
        return torch.channels_last if self.channels_last and t.dim() == 4 else torch.contiguous_format

    def weight(self, sub: nn.Module) -> torch.Tensor:
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
            signal = self.signals.pop(name, None)
            if signal is None:  # a site off the explained output's path (another head): W_m ignores it
                grads[name] = torch.zeros(arriving.shape[0], self.channels[name], device=arriving.device)
                return
            product = signal.mul_(arriving) if name in self.owned_signals else signal * arriving
            grid = self.grids.get(name)
            grads[name] = grid.reduce(product) if grid is not None else _reduce(product, self.sites[name])

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
                tangents[node] = tangent.to(self.dtype).contiguous(memory_format=self.layout(tangent))
            elif node in self._data:
                rule = self._rule.get(node)
                if rule is None:
                    tangents[node], new = self.linearise(node, tangents)
                else:
                    tangents[node], new = rule.tangent(self, node, tangents, fresh, masks, at_site)
                if new and len(node.users) == 1:
                    fresh.add(node)
            for done in self._last_use.get(node, ()):
                tangents.pop(done, None)
                fresh.discard(done)

    def linearise(self, node: fx.Node, tangents: dict[fx.Node, Any]) -> tuple[Any, bool]:
        """``(tangent, freshly allocated)`` of a node without a hand-written tangent.

        A function call is applied to the tangents; an affine module maps them as
        ``f(t) - f(0)``; any other module takes its exact JVP at the recorded inputs.
        Modules run in the recorded precision.
        """
        if node.op == "call_function":
            return node.target(*map_arg(node.args, lambda a: tangents[a] if a in tangents else self.primal[a])), False
        sub = self.module.get_submodule(node.target)
        if self.dtype != self.x.dtype:  # no hand-written rule: run it in the recorded precision
            tangents = {a: tangents[a].to(self.x.dtype) for a in node.all_input_nodes if a in tangents}
        if self.is_affine(node):
            out = sub(*map_arg(node.args, lambda a: tangents[a] if a in tangents else self.primal[a]))
            bias = self._affine_bias(node, sub, tangents)
            return (out, False) if bias is None else (out - bias, True)
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


def _carries_data(node: fx.Node, value: object, data: set) -> bool:
    """True for nodes on the input's data path; integer shape arithmetic (Shape, Cast to int,
    Gather on shapes) depends on the input only through its size and is treated as a constant."""
    if node.op != "placeholder" and not any(a in data for a in node.all_input_nodes):
        return False
    values = value if isinstance(value, (tuple, list)) else (value,)
    return any(isinstance(v, torch.Tensor) and v.is_floating_point() for v in values)

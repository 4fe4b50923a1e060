"""The fallback rule: a node without a hand-written rule keeps its own small autograd graph."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import torch
from torch import fx
from torch.fx.node import map_arg

from dmbp_onnx.errors import UnsupportedModelError
from dmbp_onnx.methods.masked.rule import Contribution, Rule

if TYPE_CHECKING:
    from dmbp_onnx.methods.masked.mapping import MaskedMapping


class AutogradRule(Rule):
    """Any other node: transposed by autograd's VJP on the graph recorded at x.

    In the adjoint pass an affine node maps ``t`` to ``f(t) - f(0)``; a one-output
    non-affine module reuses the recorded graph (``J t = d <J^T u, t> / d u``); any other
    node takes its exact JVP at the recorded primal inputs (which the mapping then keeps).

    Parameters
    ----------
    out : torch.Tensor or tuple
        The node's outputs, attached to the recorded graph.
    inputs : list of torch.fx.Node
        The node's data inputs.
    leaves : list of torch.Tensor
        Their detached leaf copies the graph starts from.
    linear : tuple, optional
        ``(u, inputs, vjps)``: the node's VJPs as functions of ``u`` (for its tangent).
    """

    def __init__(
        self, out: Any, inputs: list[fx.Node], leaves: list[torch.Tensor], linear: Optional[tuple] = None
    ) -> None:
        self.out, self.inputs, self.leaves, self.linear = out, inputs, leaves, linear

    @classmethod
    def run(cls, mapping: MaskedMapping, node: fx.Node, fn: Callable, data: list[fx.Node]) -> tuple[Rule, Any]:
        """Run ``node`` on detached leaf copies of its data inputs, keeping its own autograd graph.

        Returns ``(rule, detached output)``.
        """
        leaves: dict[fx.Node, torch.Tensor] = {}
        for a in data:
            value = mapping.primal[a]
            if not isinstance(value, torch.Tensor):
                raise UnsupportedModelError(
                    f"DMBP cannot transpose node {node.name!r}: its input {a.name!r} is a {type(value).__name__}"
                )
            leaves[a] = value.detach().requires_grad_(True)
        with torch.enable_grad():
            args = map_arg(node.args, lambda a: leaves.get(a, mapping.primal[a]))
            kwargs = map_arg(node.kwargs, lambda a: leaves.get(a, mapping.primal[a]))
            out = fn(*args, **kwargs)
        linear = None
        single = isinstance(out, torch.Tensor)
        if mapping.ops and node.op == "call_module" and not mapping.is_affine(node):
            if single and out.requires_grad:  # the adjoint reuses this graph: J t = d <J^T u, t> / d u
                u = torch.zeros_like(out, requires_grad=True)
                with torch.enable_grad():
                    vjps = torch.autograd.grad(out, list(leaves.values()), u, create_graph=True, allow_unused=True)
                linear = (u, list(leaves), vjps)
            else:  # several outputs (or none differentiable): exact JVP at the primal inputs
                mapping.keep.update(node.all_input_nodes)
        rule = cls(out, list(leaves), list(leaves.values()), linear)
        if single:
            return rule, out.detach()
        return rule, type(out)(o.detach() if isinstance(o, torch.Tensor) else o for o in out)

    def transpose(
        self, mapping: MaskedMapping, node: fx.Node, g: Any, owned: bool, masks: dict[str, torch.Tensor]
    ) -> list[Contribution]:
        """Autograd's VJP on the recorded graph (``g`` a dict of slots for several outputs)."""
        pairs = [(self.out[i], v) for i, v in g.items()] if isinstance(g, dict) else [(self.out, g)]
        pairs = [(o, v) for o, v in pairs if o.requires_grad]
        if not pairs:
            return []
        found = torch.autograd.grad(
            [o for o, _ in pairs], self.leaves, [v.to(o.dtype) for o, v in pairs], retain_graph=True, allow_unused=True
        )
        return [(a, v, False) for a, v in zip(self.inputs, found)]

    def tangent(
        self,
        mapping: MaskedMapping,
        node: fx.Node,
        tangents: dict[fx.Node, Any],
        fresh: set[fx.Node],
        masks: dict[str, torch.Tensor],
        at_site,
    ) -> tuple[Any, bool]:
        """``J t`` from the recorded VJPs when kept, else the node's linearisation."""
        if self.linear is None:
            return super().tangent(mapping, node, tangents, fresh, masks, at_site)
        if mapping.dtype != mapping.x.dtype:  # no hand-written rule: run it in the recorded precision
            tangents = {a: tangents[a].to(mapping.x.dtype) for a in node.all_input_nodes if a in tangents}
        u, data, vjps = self.linear
        pairs = [(v, tangents[a]) for a, v in zip(data, vjps) if v is not None]
        with torch.enable_grad():
            (out,) = torch.autograd.grad([v for v, _ in pairs], u, [t for _, t in pairs], retain_graph=True)
        return out, True

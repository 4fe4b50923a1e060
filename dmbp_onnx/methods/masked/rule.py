"""The rule contract: what one node keeps from the forward pass at x, its transpose, its tangent.

Each kind of node has one small :class:`Rule` class (zennit's idea). A rule with
:attr:`Rule.modules` is chosen for every node whose twin module is exactly one of those
types: defining the class registers it, so adding a rule is a one-class change. Nodes no
rule claims (or that a rule declines) get :class:`~dmbp_onnx.methods.masked.autograd.AutogradRule`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Optional

import torch
from torch import fx, nn

if TYPE_CHECKING:
    from dmbp_onnx.methods.masked.mapping import MaskedMapping

#: ``(input node, gradient, freshly allocated)`` for one data input of a node.
Contribution = tuple[fx.Node, Any, bool]

#: Module type -> the rule class that handles it (filled by :meth:`Rule.__init_subclass__`).
MODULE_RULES: dict[type[nn.Module], type["Rule"]] = {}


class Rule:
    """How the masked backward treats one node of the twin.

    A rule is built once per node by :meth:`record` during the forward pass at x and keeps
    only what the node's two linear passes need; each iteration then calls
    :meth:`transpose` (the backward pass giving W_m) and :meth:`tangent` (the adjoint
    forward pass of the frozen, bias-free, masked network L_m).

    Attributes
    ----------
    modules : tuple of type
        Module types this rule is chosen for (exact types; empty: the rule is built
        by the mapping itself, e.g. for a function call).
    needs_tensor : bool
        Whether the rule applies only when the node's one data input is its first
        argument, a single tensor (otherwise the node falls back to autograd).
    """

    modules: ClassVar[tuple[type[nn.Module], ...]] = ()
    needs_tensor: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for kind in cls.modules:
            if kind in MODULE_RULES:
                raise RuntimeError(f"{kind.__name__} already has the rule {MODULE_RULES[kind].__name__}")
            MODULE_RULES[kind] = cls

    @classmethod
    def record(
        cls, mapping: MaskedMapping, node: fx.Node, sub: nn.Module, h: Optional[torch.Tensor], args: tuple
    ) -> Optional[tuple["Rule", Any]]:
        """Run the node at x; ``(rule, output)``, or None when this rule does not fit the node.

        Parameters
        ----------
        mapping : MaskedMapping
            The mapping being recorded (its precision, layout and sites).
        node : torch.fx.Node
            The node.
        sub : torch.nn.Module
            Its module.
        h : torch.Tensor or None
            The node's one data input when it is the first argument (else None).
        args : tuple
            The node's argument values.
        """
        raise NotImplementedError

    def transpose(
        self, mapping: MaskedMapping, node: fx.Node, g: Any, owned: bool, masks: dict[str, torch.Tensor]
    ) -> list[Contribution]:
        """The backward signal ``g`` at the node's output, taken to each of its data inputs.

        ``owned`` tells that ``g`` is the pass's own tensor (it may be modified in place).
        """
        raise NotImplementedError

    def zero_unless_positive(self) -> bool:
        """Whether the node's transpose zeroes its signal, and its tangent is zero, wherever the node's
        value at x is not positive (a ReLU right after it, mask sites between, then changes nothing)."""
        return False

    def tangent(
        self,
        mapping: MaskedMapping,
        node: fx.Node,
        tangents: dict[fx.Node, Any],
        fresh: set[fx.Node],
        masks: dict[str, torch.Tensor],
        at_site,
    ) -> tuple[Any, bool]:
        """``(tangent of the node, freshly allocated)`` in the adjoint pass.

        By default the node's own linearisation (:meth:`MaskedMapping.linearise`); ``fresh``
        holds the input nodes whose tangent may be modified in place.
        """
        return mapping.linearise(node, tangents)


class NativeRule(Rule):
    """A hand-written rule of a one-input module, run in the passes' precision.

    Subclasses give :meth:`backward` and :meth:`forward`; the forward is used in the
    adjoint pass when the nodes' ONNX ops are known (otherwise the node's linearisation),
    and always when :attr:`linearisable` is False.

    Attributes
    ----------
    linearisable : bool
        Whether the node's own linearisation is the transpose of :meth:`backward` (False for a
        rule whose backward is not the node's gradient, e.g. LRP's Gamma rule).
    """

    linearisable: ClassVar[bool] = True

    def transpose(
        self, mapping: MaskedMapping, node: fx.Node, g: Any, owned: bool, masks: dict[str, torch.Tensor]
    ) -> list[Contribution]:
        """``backward(g)`` in the passes' precision, passed to the node's first argument."""
        if g.dtype != mapping.dtype:
            g, owned = g.to(mapping.dtype), True
        return [(node.args[0] if node.args else None, self.backward(mapping, g, owned), True)]

    def tangent(
        self,
        mapping: MaskedMapping,
        node: fx.Node,
        tangents: dict[fx.Node, Any],
        fresh: set[fx.Node],
        masks: dict[str, torch.Tensor],
        at_site,
    ) -> tuple[Any, bool]:
        """``forward(t)`` in the passes' precision (a new tensor)."""
        if not mapping.ops and self.linearisable:
            return super().tangent(mapping, node, tangents, fresh, masks, at_site)
        t = tangents[node.args[0]]
        if t.dtype != mapping.dtype:
            t = t.to(mapping.dtype)
        return self.forward(mapping, t, node.args[0] in fresh), True

    def backward(self, mapping: MaskedMapping, g: torch.Tensor, owned: bool) -> torch.Tensor:
        """The transpose of the node applied to ``g`` (in place when ``owned`` allows)."""
        raise NotImplementedError

    def forward(self, mapping: MaskedMapping, t: torch.Tensor, owned: bool) -> torch.Tensor:
        """The node's linear part applied to ``t`` (in place when ``owned`` allows)."""
        raise NotImplementedError


def rule_for(sub: nn.Module) -> Optional[type[Rule]]:
    """The rule class registered for the exact type of ``sub`` (None if none)."""
    return MODULE_RULES.get(type(sub))

"""LRP's Gamma rule inside the masked backward: DMBP's masks over an LRP-modified mapping.

A layer-wise relevance rule is a modified gradient. For a convolution ``z = W a + b`` with
``a >= 0`` (a hidden layer after a ReLU or max-pooling), zennit's generalised Gamma rule
(:class:`zennit.rules.Gamma`) sends the relevance ``R_z`` at its output to its input as
``R_a = a * W'^T (1[z > 0] R_z / z')`` with ``W' = W + gamma W+`` and ``z' = W' a + b + gamma b+``
(and the mirror term with ``W + gamma W-`` for ``z < 0``). Writing relevance as
``R = activation * signal``, and taking the ReLU as a gate on the signal (zennit passes
relevance through it unchanged, which is the same thing since ``R_a = 0`` where ``a = 0``),
this is the ordinary backward pass with the layer's signal multiplied by the recorded ratio
``1[z > 0] z / z'`` and transposed with ``W'`` instead of ``W``. Every other node keeps its
gradient rule, which *is* LRP's epsilon rule for a bias-free linear node (pooling by
averages, reshapes, interpolation) and for a linear layer up to zennit's 1e-6 stabiliser.

The rule is a composite in zennit's sense: :data:`LRP_GAMMA` maps module types to rule
classes, and :class:`~dmbp_onnx.methods.masked.MaskedMapping` takes it as ``rules``. It runs
on the LRP-canonical copy of the twin (:func:`dmbp_onnx.twin.canonical.canonicalize`: biases
and BatchNorms inside their convolutions). A convolution whose input has a negative entry
(the first layer on normalised images) keeps the gradient rule (LRP-epsilon); one whose
output feeds nothing but a ReLU (through mask sites) needs only the ``z > 0`` term.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Optional

import torch
from torch import fx, nn

from dmbp_onnx.methods.masked.rule import Rule
from dmbp_onnx.methods.masked.rules import _CONV_FN, ConvRule
from dmbp_onnx.twin.masks import MaskSite

if TYPE_CHECKING:
    from dmbp_onnx.methods.masked.mapping import MaskedMapping

#: zennit's defaults for the Gamma rule (EpsilonGammaBox's convolutions).
GAMMA, STABILISER = 0.25, 1e-6

#: Convolution -> {(sign, dtype): (its weight, the weight's version, the modified weight)}: the
#: mappings of one module (the points of DMBP's path) share one copy; freed with the module.
_MODIFIED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stabilise(z: torch.Tensor) -> torch.Tensor:
    """zennit's stabiliser: ``z + STABILISER * sign(z)``, with +1 for the sign of 0."""
    return z + ((z == 0).to(z.dtype) + z.sign()) * STABILISER


def modify(weight: torch.Tensor, sign: float) -> torch.Tensor:
    """``W + GAMMA W+`` (sign 1) or ``W + GAMMA W-`` (sign -1), detached."""
    with torch.no_grad():
        return weight + GAMMA * (weight.clamp(min=0) if sign > 0 else weight.clamp(max=0))


def modified_weight(sub: nn.Module, sign: float, dtype: torch.dtype) -> torch.Tensor:
    """:func:`modify` of the convolution ``sub``'s weight in ``dtype``, computed once per weight
    (again when the weight is replaced or changed in place)."""
    cache = _MODIFIED.setdefault(sub, {})
    weight = sub.weight
    found = cache.get((sign, dtype))
    if found is None or found[0] is not weight or found[1] != weight._version:
        found = cache[(sign, dtype)] = (weight, weight._version, modify(weight, sign).to(dtype))
    return found[2]


def feeds_only_relu(module: fx.GraphModule, node: fx.Node) -> bool:
    """Whether ``node``'s value reaches nothing but one ReLU, through mask sites only."""
    while len(node.users) == 1:
        (user,) = node.users
        if user.op != "call_module":
            return False
        sub = module.get_submodule(user.target)
        if isinstance(sub, nn.ReLU):
            return True
        if not isinstance(sub, MaskSite):
            return False
        node = user
    return False


class GammaConvRule(ConvRule):
    """A convolution under LRP's Gamma rule: per sign branch, a recorded ratio and a modified weight.

    Parameters
    ----------
    sub : torch.nn.Module
        The convolution.
    shape : torch.Size
        Its input's shape.
    branches : list of (torch.Tensor, torch.Tensor)
        ``(W', 1[sign z > 0] z / z')`` for the positive branch and, unless the output only feeds a
        ReLU, the negative one; in the passes' precision.
    """

    modules = ()  # chosen through the LRP_GAMMA composite, not for every convolution
    linearisable = False  # its backward is not the convolution's gradient: the adjoint uses forward()

    def __init__(self, sub: nn.Module, shape: torch.Size, branches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        super().__init__(sub, shape)
        self.branches = branches

    @classmethod
    def record(
        cls, mapping: MaskedMapping, node: fx.Node, sub: nn.Module, h: Optional[torch.Tensor], args: tuple
    ) -> Optional[tuple[Rule, Any]]:
        """Record the ratios (the plain convolution rule where the input has a negative entry)."""
        plain = ConvRule.record(mapping, node, sub, h, args)
        if plain is None or bool((h < 0).any()):
            return plain
        z = plain[1]
        conv = _CONV_FN[type(sub)]
        signs = (1.0,) if feeds_only_relu(mapping.module, node) else (1.0, -1.0)
        branches = []
        for sign in signs:
            kept = modified_weight(sub, sign, mapping.dtype)
            weight = kept if kept.dtype == sub.weight.dtype else modify(sub.weight, sign)
            bias = None
            if sub.bias is not None:
                bias = sub.bias + GAMMA * (sub.bias.clamp(min=0) if sign > 0 else sub.bias.clamp(max=0))
            modified = conv(h, weight, bias, sub.stride, sub.padding, sub.dilation, sub.groups)
            ratio = torch.where(sign * z > 0, z / stabilise(modified), torch.zeros((), dtype=z.dtype))
            ratio = ratio.to(mapping.dtype).contiguous(memory_format=mapping.layout(ratio))
            branches.append((kept, ratio))
        return cls(sub, h.shape, branches), z

    def zero_unless_positive(self) -> bool:
        """True with the positive branch alone: its ratio is 0 wherever ``z <= 0``."""
        return len(self.branches) == 1

    def backward(self, mapping: MaskedMapping, g: torch.Tensor, owned: bool) -> torch.Tensor:
        """Each branch's ratio times ``g`` (in place for the last when ``owned``), transposed with its weight;
        summed."""
        total, last = None, len(self.branches) - 1
        for i, (weight, ratio) in enumerate(self.branches):
            part = self._transposed(mapping, g.mul_(ratio) if owned and i == last else g * ratio, weight)
            total = part if total is None else total.add_(part)
        return total

    def forward(self, mapping: MaskedMapping, t: torch.Tensor, owned: bool) -> torch.Tensor:
        """Each branch's bias-free convolution of ``t`` with its weight, times its ratio; summed."""
        t = t.contiguous(memory_format=mapping.layout(t))
        total = None
        for weight, ratio in self.branches:
            part = self._convolved(t, weight).mul_(ratio)
            total = part if total is None else total.add_(part)
        return total


#: The composite of :class:`GammaConvRule` for every convolution (other nodes keep their rules).
LRP_GAMMA: dict[type[nn.Module], type[Rule]] = {kind: GammaConvRule for kind in _CONV_FN}

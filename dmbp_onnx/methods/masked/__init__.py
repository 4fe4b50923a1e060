"""The masked mapping W_m and its adjoint, from ONE forward pass at x.

W_m (docs/method.md) is the input gradient with every filter's backward signal
scaled by a mask. The forward pass at x is run once and keeps only what the two
linear passes of an iteration need: ReLU gates as 0/1 bytes, max-pool selections
as int32 indices, the input shapes of convolutions; the activations themselves are freed as soon as the
forward pass is done with them. Per iteration:

* :meth:`MaskedMapping.__call__` — one transpose (backward) pass, walking the
  twin's fx graph backwards, gives W_m and the backward signal ``g_l`` arriving at
  every site (before its mask);
* :meth:`MaskedMapping.adjoint` — one forward pass of the frozen, bias-free,
  masked network L_m applied to ``G = d loss / d W_m`` gives the activation
  ``a'_l`` arriving at every site, and ``d loss / d m_l[k] = sum(g_l * a'_l)``
  over the positions of filter k.

What each node does in the two passes is its :class:`Rule` (one small class per kind
of node, chosen by the type of the module the converter built):

* :mod:`~dmbp_onnx.methods.masked.site` — mask sites;
* :mod:`~dmbp_onnx.methods.masked.rules` — hand-written rules for ReLU, convolutions,
  linear layers, 2-D max-pooling (overlapping windows included), Flatten/Reshape and
  tuple items; a ReLU after a node whose passes already zero what its gate would (LRP's
  one-branch Gamma convolution) keeps no gate and is the identity (:class:`PassRule`);
* :mod:`~dmbp_onnx.methods.masked.autograd` — every other node keeps its own small
  autograd graph from the forward pass; its transpose is autograd's VJP there, its
  tangent ``f(t) - f(0)`` when its op is affine (the ``affine`` trait in
  :mod:`dmbp_onnx.op_traits`; the bias computed once), else its exact
  Jacobian-vector product.

No weight gradient is ever computed. Products and masks are applied in place wherever
the tensor is the pass's own.

Adding a rule is one class: subclass :class:`Rule` (or :class:`NativeRule` for a
one-input module run in the passes' precision), list the module types in ``modules``,
and implement ``record`` / ``transpose`` / ``tangent`` (or ``backward`` / ``forward``);
importing its module registers it (import it here).
"""

from dmbp_onnx.methods.masked.autograd import AutogradRule
from dmbp_onnx.methods.masked.mapping import MaskedMapping
from dmbp_onnx.methods.masked.rule import MODULE_RULES, NativeRule, Rule
from dmbp_onnx.methods.masked.rules import (
    ConvRule,
    GetItemRule,
    LinearRule,
    MaxPoolRule,
    PassRule,
    ReluRule,
    ReshapeRule,
)
from dmbp_onnx.methods.masked.site import SiteRule
from dmbp_onnx.methods.masked.stacked import StackedMapping

__all__ = [
    "MODULE_RULES",
    "AutogradRule",
    "ConvRule",
    "GetItemRule",
    "LinearRule",
    "MaskedMapping",
    "MaxPoolRule",
    "NativeRule",
    "PassRule",
    "ReluRule",
    "ReshapeRule",
    "Rule",
    "SiteRule",
    "StackedMapping",
]

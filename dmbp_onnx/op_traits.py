"""What each ONNX op is: the one table every part of the package asks (torch-free).

The graph side (eligibility in :mod:`dmbp_onnx.graph.inspect`) and the torch side
(the twin's mask sites, DMBP's masked backward, guided backprop, the randomisation
check) read an op's traits here; nobody keeps a private list of op names. The
converter registry refuses to register an op of the default domain without an entry
(:func:`dmbp_onnx.twin.registry.converter`), so adding an op means adding its line here.
Ops without a converter are listed too: eligibility is reported for any model.

This module imports nothing but the standard library, so ``inspect`` works without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How an op is piecewise linear in its data inputs:
#: ``"always"`` (jointly, in all of them), ``"in_first"`` (in the first; every other input
#: must be constant), ``"in_one"`` (at most one input may be data), ``"in_one_of_two"`` (at
#: most one of the first two; the others constant: Gemm), ``"cast"`` (when it casts to a
#: float type), ``""`` (not piecewise linear).
Linearity = Literal["always", "in_first", "in_one", "in_one_of_two", "cast", ""]


@dataclass(frozen=True)
class OpTraits:
    """What the rest of the package needs to know about one ONNX op.

    Attributes
    ----------
    piecewise_linear : str
        A :data:`Linearity`: when the op is piecewise linear in its data inputs (DMBP
        eligibility).
    affine : bool
        Affine in its data inputs when the others are constants. DMBP's masked backward
        maps a tangent through such a node as ``f(t) - f(0)``; through any other node
        without a hand-written rule (by module type, :mod:`dmbp_onnx.methods.masked`) by
        its exact Jacobian-vector product.
    linear_layer : bool
        A layer with a weight (Conv, Gemm, ...): a mask site follows its filters, and a
        fully-connected layer is hidden when another linear layer is downstream.
    rectifier : str
        ``"always"``: a rectifier for guided backprop; ``"constant_operand"``: one when an
        operand is constant (``Max(x, 0)``, ``Min(x, 6)``); ``""``: not a rectifier.
    randomisable : bool
        The model-randomisation check may reset its constant weights even when the
        converter keeps them as buffers (any module's floating parameters are reset).
    """

    piecewise_linear: Linearity = ""
    affine: bool = False
    linear_layer: bool = False
    rectifier: Literal["always", "constant_operand", ""] = ""
    randomisable: bool = False


_PL = OpTraits(piecewise_linear="always")
_PL_AFFINE = OpTraits(piecewise_linear="always", affine=True)
_FIRST = OpTraits(piecewise_linear="in_first")
_FIRST_AFFINE = OpTraits(piecewise_linear="in_first", affine=True)
_LAYER = OpTraits(piecewise_linear="in_first", affine=True, linear_layer=True, randomisable=True)
_NONE = OpTraits()

#: ONNX op (default domain) -> its traits.
TRAITS: dict[str, OpTraits] = {
    # linear layers
    "Conv": _LAYER,
    "ConvTranspose": _LAYER,
    "Gemm": OpTraits(piecewise_linear="in_one_of_two", affine=True, linear_layer=True, randomisable=True),
    "MatMul": OpTraits(piecewise_linear="in_one", affine=True, linear_layer=True, randomisable=True),
    "BatchNormalization": _FIRST_AFFINE,
    # rectifiers and other piecewise-linear activations
    "Relu": OpTraits(piecewise_linear="always", rectifier="always"),
    "LeakyRelu": OpTraits(piecewise_linear="always", rectifier="always"),
    "PRelu": OpTraits(piecewise_linear="in_first", rectifier="always"),
    "Clip": OpTraits(piecewise_linear="in_first", rectifier="always"),
    "Max": OpTraits(piecewise_linear="always", rectifier="constant_operand"),
    "Min": OpTraits(piecewise_linear="always", rectifier="constant_operand"),
    "Abs": _PL,
    # elementwise arithmetic
    "Add": _PL_AFFINE,
    "Sub": _PL_AFFINE,
    "Sum": _PL_AFFINE,
    "Neg": _PL_AFFINE,
    "Mean": _PL,
    "Mul": OpTraits(piecewise_linear="in_one"),
    "Div": _FIRST,
    # pooling and reductions
    "MaxPool": _PL,
    "GlobalMaxPool": _PL,
    "AveragePool": _PL_AFFINE,
    "GlobalAveragePool": _PL_AFFINE,
    "ReduceMean": _PL_AFFINE,
    "ReduceSum": _PL_AFFINE,
    "ReduceMax": _PL,
    "ReduceMin": _PL,
    # layout and indexing
    "Concat": _PL_AFFINE,
    "Flatten": _PL_AFFINE,
    "Transpose": _PL_AFFINE,
    "Identity": _PL_AFFINE,
    "Dropout": _PL_AFFINE,
    "Pad": _FIRST_AFFINE,
    "Reshape": _FIRST_AFFINE,
    "Squeeze": _FIRST_AFFINE,
    "Unsqueeze": _FIRST_AFFINE,
    "Slice": _FIRST,
    "Expand": _FIRST,
    "Tile": _FIRST,
    "Split": _FIRST,
    "Gather": _FIRST,
    "Resize": _FIRST,
    "Upsample": _FIRST,
    "DepthToSpace": _PL,
    "SpaceToDepth": _PL,
    "Cast": OpTraits(piecewise_linear="cast"),
    "CastLike": OpTraits(piecewise_linear="cast"),
    # not piecewise linear (or off the data path)
    "Sigmoid": _NONE,
    "Tanh": _NONE,
    "Softmax": _NONE,
    "LogSoftmax": _NONE,
    "GatherND": _NONE,
    "Shape": _NONE,
    "Size": _NONE,
    "Constant": _NONE,
    "ConstantOfShape": _NONE,
    "Range": _NONE,
}


def op_traits(op: str, domain: str | None = "") -> OpTraits:
    """The traits of ``op`` (nothing known: not piecewise linear, not affine, ... for an op of
    another domain or one without an entry)."""
    if domain not in (None, "", "ai.onnx"):
        return _NONE
    return TRAITS.get(op, _NONE)

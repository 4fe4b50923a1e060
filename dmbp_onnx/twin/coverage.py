"""Which ai.onnx operators the twin converts, refuses by design, or does not convert yet.

Supported operators and their opsets come from the converter registry; the reasons
for refusing an operator by design are the one table below. Every other ai.onnx
operator is "not yet": nothing in the method rules it out, it only lacks a converter.
``benchmarks/ops_table.py`` renders this as ``docs/ops.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

import dmbp_onnx.twin.ops  # noqa: F401  (registers the converters)
from dmbp_onnx.twin.registry import registered_ops

#: Reason -> the ai.onnx operators refused for it (one table; no operator twice).
REFUSAL_REASONS: dict[str, tuple[str, ...]] = {
    "not piecewise linear (DMBP needs a piecewise-linear network between input and target)": (
        "Acos Acosh Asin Asinh Atan Atanh Cos Cosh Sin Sinh Tan Exp Log Sqrt Pow Reciprocal Erf "
        "Gelu Elu Selu Celu Softplus Softsign Mish Swish HardSwish SwiGLU "
        "LayerNormalization GroupNormalization InstanceNormalization RMSNormalization LpNormalization "
        "MeanVarianceNormalization LRN LpPool GlobalLpPool ReduceL2 ReduceLogSum ReduceLogSumExp "
        "ReduceProd ReduceSumSquare CumProd Det RNN GRU LSTM Attention LinearAttention RotaryEmbedding"
    ).split(),
    "data-dependent control flow or output shape": (
        "If Loop Scan NonZero Unique Compress NonMaxSuppression"
    ).split(),
    "random (no deterministic result to prove equal)": (
        "RandomNormal RandomNormalLike RandomUniform RandomUniformLike Multinomial Bernoulli"
    ).split(),
    "sequence, optional, string or encoded-image types (the twin computes on numeric tensors)": (
        "SequenceAt SequenceConstruct SequenceEmpty SequenceErase SequenceInsert SequenceLength SequenceMap "
        "SplitToSequence ConcatFromSequence Optional OptionalGetElement OptionalHasElement "
        "StringConcat StringNormalizer StringSplit RegexFullMatch TfIdfVectorizer ImageDecoder"
    ).split(),
    "quantized integer arithmetic (the twin computes in floating point)": (
        "QuantizeLinear DequantizeLinear DynamicQuantizeLinear QLinearConv QLinearMatMul ConvInteger MatMulInteger"
    ).split(),
    "training loss (not part of an inference graph)": ("SoftmaxCrossEntropyLoss NegativeLogLikelihoodLoss").split(),
}

REFUSED_BY_DESIGN: dict[str, str] = {op: reason for reason, ops in REFUSAL_REASONS.items() for op in ops}
"""Operator -> why the twin refuses it by design."""


@dataclass(frozen=True)
class OpCoverage:
    """The twin's status for one ai.onnx operator.

    Attributes
    ----------
    op : str
        Operator type.
    status : {"supported", "refused", "not yet"}
        Whether the twin converts it, refuses it by design, or lacks a converter.
    opsets : tuple of int
        Every opset (1 to the newest ONNX knows) whose revision of ``op`` has a converter.
    revisions : tuple of int
        The registered schema revisions (``since_version``).
    reason : str
        Why it is refused by design ("" otherwise).
    deprecated : bool
        ONNX marks the operator deprecated.
    """

    op: str
    status: str
    opsets: tuple[int, ...] = ()
    revisions: tuple[int, ...] = ()
    reason: str = ""
    deprecated: bool = False


def ai_onnx_ops() -> dict[str, bool]:
    """Every operator of the ai.onnx domain the installed ``onnx`` knows -> whether it is deprecated."""
    return {s.name: bool(s.deprecated) for s in onnx.defs.get_all_schemas_with_history() if s.domain == ""}


def _opsets(op: str, revisions: set[int]) -> tuple[int, ...]:
    newest = onnx.defs.onnx_opset_version()
    found = []
    for opset in range(1, newest + 1):
        try:
            if onnx.defs.get_schema(op, opset).since_version in revisions:
                found.append(opset)
        except onnx.defs.SchemaError:
            continue
    return tuple(found)


def coverage() -> list[OpCoverage]:
    """The status of every ai.onnx operator, sorted by name."""
    registered = registered_ops()
    rows = []
    for op, deprecated in sorted(ai_onnx_ops().items()):
        if op in registered:
            revisions = tuple(registered[op])
            rows.append(OpCoverage(op, "supported", _opsets(op, set(revisions)), revisions, deprecated=deprecated))
        elif op in REFUSED_BY_DESIGN:
            rows.append(OpCoverage(op, "refused", reason=REFUSED_BY_DESIGN[op], deprecated=deprecated))
        else:
            rows.append(OpCoverage(op, "not yet", deprecated=deprecated))
    return rows

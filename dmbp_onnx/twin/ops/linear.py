"""Fully-connected ops: Gemm (opset 7, 9, 11, 13) and MatMul (opset 1, 9, 13).

A constant right operand becomes an ``nn.Linear`` (what attribution libraries
recognise); anything else runs as a small module computing the ONNX formula.
"""

from __future__ import annotations

import torch
from torch import nn

from dmbp_onnx.twin.ops.common import ConstantsOp, bind
from dmbp_onnx.twin.registry import Converted, NodeContext, converter, module_with_weights


class GemmOp(ConstantsOp):
    """``alpha * A' @ B' + beta * C`` with ``'`` an optional transpose."""

    def __init__(self, alpha: float, beta: float, trans_a: bool, trans_b: bool) -> None:
        super().__init__()
        self.alpha, self.beta, self.trans_a, self.trans_b = alpha, beta, trans_a, trans_b

    def compute(self, a, b, c=None):
        a = a.t() if self.trans_a else a
        b = b.t() if self.trans_b else b
        y = a @ b
        if self.alpha != 1.0:
            y = self.alpha * y
        if c is not None:
            y = y + (c if self.beta == 1.0 else self.beta * c)
        return y

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, transA={self.trans_a}, transB={self.trans_b}"


class MatMulOp(ConstantsOp):
    """``torch.matmul`` (numpy semantics, as ONNX MatMul)."""

    def compute(self, a, b):
        return torch.matmul(a, b)


def _linear(weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Linear:
    """A frozen ``nn.Linear`` holding ``weight`` (out, in) and ``bias`` (no random init)."""
    return module_with_weights(
        nn.Linear, {"weight": weight, "bias": bias},
        in_features=weight.shape[1], out_features=weight.shape[0], bias=bias is not None,
    )  # fmt: skip


@converter("Gemm", versions=(7, 9, 11, 13))
def convert_gemm(ctx: NodeContext) -> Converted:
    """Convert Gemm; ``nn.Linear`` when A is the runtime input and B, C are constant vectors."""
    ctx.check_attributes({"alpha", "beta", "transA", "transB"})
    alpha = float(ctx.attr("alpha", 1.0))
    beta = float(ctx.attr("beta", 1.0))
    trans_a = bool(ctx.attr("transA", 0))
    trans_b = bool(ctx.attr("transB", 0))
    if not trans_a and not ctx.is_constant(0) and ctx.is_constant(1):
        b = ctx.constant_tensor(1)
        weight = b if trans_b else b.t()
        n_out = weight.shape[0]
        bias = None
        if ctx.has_input(2):
            c = ctx.constant_tensor(2) if ctx.is_constant(2) else None
            if c is not None and c.numel() in (1, n_out) and (c.dim() <= 1 or c.shape[0] == 1):
                bias = c.reshape(-1).expand(n_out).clone()
                if beta != 1.0:
                    bias = beta * bias
            else:
                return bind(ctx, GemmOp(alpha, beta, trans_a, trans_b))
        if b.dtype == torch.float32:
            return Converted(_linear(weight * alpha if alpha != 1.0 else weight, bias), [0])
    return bind(ctx, GemmOp(alpha, beta, trans_a, trans_b))


@converter("MatMul", versions=(1, 9, 13))
def convert_matmul(ctx: NodeContext) -> Converted:
    """Convert MatMul; ``nn.Linear`` (no bias) when the right operand is a constant matrix."""
    ctx.check_attributes(set())
    if not ctx.is_constant(0) and ctx.is_constant(1):
        b = ctx.constant_tensor(1)
        if b.dim() == 2 and b.dtype == torch.float32:
            return Converted(_linear(b.t().contiguous(), None), [0])
    return bind(ctx, MatMulOp())

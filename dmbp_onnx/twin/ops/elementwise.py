"""Broadcasting arithmetic: Add, Sub, Mul, Div, Neg and variadic Max, Min.

Revisions before 7 (legacy ``broadcast``/``axis`` attributes) are not registered,
so such nodes are refused by the registry, naming the revision. Inputs declared
uint16/32/64 are refused where torch has no kernel (all but Mul), and inputs of a
type numpy lacks (bfloat16, float8) everywhere.
"""

from __future__ import annotations

import torch

from dmbp_onnx.twin.ops.common import NO_TORCH_ARITHMETIC, ConstantsOp, bind, refuse_input_dtypes
from dmbp_onnx.twin.registry import Converted, NodeContext, converter


class Binary(ConstantsOp):
    """One of ``add``, ``sub``, ``mul``, ``div`` with numpy broadcasting.

    Integer division truncates toward zero, as onnxruntime does.
    """

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def compute(self, a, b):
        if self.op == "add":
            return a + b
        if self.op == "sub":
            return a - b
        if self.op == "mul":
            return a * b
        if a.is_floating_point():
            return a / b
        return torch.div(a, b, rounding_mode="trunc")

    def extra_repr(self) -> str:
        return self.op


class Negate(ConstantsOp):
    """``-x``."""

    def compute(self, x):
        return -x


class Extremum(ConstantsOp):
    """Elementwise maximum or minimum of any number of broadcast inputs."""

    def __init__(self, largest: bool) -> None:
        super().__init__()
        self.largest = largest

    def compute(self, *xs):
        fn = torch.maximum if self.largest else torch.minimum
        out = xs[0]
        for x in xs[1:]:
            out = fn(out, x)
        if len(xs) == 1:
            out = out.clone()
        return out

    def extra_repr(self) -> str:
        return "max" if self.largest else "min"


def _binary(op: str):
    def convert(ctx: NodeContext) -> Converted:
        ctx.check_attributes(set())
        refuse_input_dtypes(ctx, frozenset() if op == "mul" else NO_TORCH_ARITHMETIC)
        return bind(ctx, Binary(op))

    convert.__doc__ = f"Convert {op.capitalize()} (numpy broadcasting)."
    return convert


for _op in ("Add", "Sub", "Mul", "Div"):
    converter(_op, versions=(7, 13, 14))(_binary(_op.lower()))


@converter("Neg", versions=(6, 13))
def convert_neg(ctx: NodeContext) -> Converted:
    """Convert Neg."""
    ctx.check_attributes(set())
    return bind(ctx, Negate())


@converter("Max", versions=(6, 8, 12, 13))
def convert_max(ctx: NodeContext) -> Converted:
    """Convert variadic Max (opset 6 requires equal shapes, 8+ broadcasts: both exact here)."""
    ctx.check_attributes(set())
    refuse_input_dtypes(ctx, NO_TORCH_ARITHMETIC)
    return bind(ctx, Extremum(largest=True))


@converter("Min", versions=(6, 8, 12, 13))
def convert_min(ctx: NodeContext) -> Converted:
    """Convert variadic Min."""
    ctx.check_attributes(set())
    refuse_input_dtypes(ctx, NO_TORCH_ARITHMETIC)
    return bind(ctx, Extremum(largest=False))

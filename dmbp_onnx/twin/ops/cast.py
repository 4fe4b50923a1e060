"""Casts: Cast (to a type named by attribute) and CastLike (to the type of a second input).

Both cast between numeric and bool types; bfloat16, float8, int4, string and complex
are refused on either side, and so are uint16/32/64 targets (torch stores them but
has no arithmetic kernels for them).
"""

from __future__ import annotations

import torch

from dmbp_onnx.twin.ops.common import (
    NO_TORCH_DTYPE,
    ConstantsOp,
    bind,
    dtype_name,
    numpy_to_torch_dtype,
    onnx_dtype_to_torch,
    refuse_input_dtypes,
)
from dmbp_onnx.twin.registry import Converted, NodeContext, converter

_NO_ARITHMETIC_TARGETS = (torch.uint16, torch.uint32, torch.uint64)


class Cast(ConstantsOp):
    """``x.to(dtype)`` (float -> int truncates toward zero, as onnxruntime does)."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def compute(self, x):
        return x.to(self.dtype)

    def extra_repr(self) -> str:
        return str(self.dtype)


class CastToTypeOf(ConstantsOp):
    """``x.to(like.dtype)``, for a CastLike whose target type is only known at run time."""

    def compute(self, x, like):
        return x.to(like.dtype)


def _checked_target(ctx: NodeContext, dtype: torch.dtype, label: str) -> torch.dtype:
    """``dtype`` when the twin can compute in it; raises naming ``label`` otherwise."""
    name = str(dtype).removeprefix("torch.")
    if name in NO_TORCH_DTYPE or dtype.itemsize < 1 or dtype in _NO_ARITHMETIC_TARGETS:
        raise ctx.fail(f"cast target type {label} ({dtype}) is not supported")
    return dtype


@converter("Cast", versions=(6, 9, 13, 19, 21, 23))
def convert_cast(ctx: NodeContext) -> Converted:
    """Convert Cast between numeric or bool types."""
    ctx.check_attributes({"to", "saturate"} if ctx.since_version >= 19 else {"to"})
    refuse_input_dtypes(ctx, NO_TORCH_DTYPE)
    to = ctx.attr("to")
    ctx.attr("saturate")  # only changes float8 targets, which are refused
    try:
        dtype = onnx_dtype_to_torch(int(to))
    except (TypeError, KeyError, ValueError):
        name = dtype_name(to) if isinstance(to, int) else "not a type"
        raise ctx.fail(f"cast target type {to} ({name}) is not supported") from None
    return bind(ctx, Cast(_checked_target(ctx, dtype, str(to))))


@converter("CastLike", versions=(15, 19, 21, 23))
def convert_cast_like(ctx: NodeContext) -> Converted:
    """Convert CastLike: a Cast when input 1's type is known at build time, else read at run time.

    Only the type of input 1 matters, so a known type leaves it out of the twin's graph.
    """
    ctx.check_attributes({"saturate"} if ctx.since_version >= 19 else set())
    ctx.attr("saturate")  # only changes float8 targets, which are refused
    if not ctx.has_input(1):
        raise ctx.fail("input 'target_type' is required")
    refuse_input_dtypes(ctx, NO_TORCH_DTYPE)
    like = ctx.node.inputs[1].dtype
    if like is None:
        return bind(ctx, CastToTypeOf())
    dtype = numpy_to_torch_dtype(like)
    return bind(ctx, Cast(_checked_target(ctx, dtype, dtype_name(like))), n_inputs=1)

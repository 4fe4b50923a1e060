"""ReduceMean, ReduceMax, ReduceSum: ``axes`` attribute or input by revision, ``keepdims``,
``noop_with_empty_axes``.

A reduction over an empty set gives ONNX's identity: ``-inf`` for ReduceMax (the
type's minimum for integers, False for bool), 0 for ReduceSum and NaN for ReduceMean.
"""

from __future__ import annotations

import torch

from dmbp_onnx.twin.ops.common import NO_TORCH_ARITHMETIC, ConstantsOp, bind, int_list, refuse_input_dtypes
from dmbp_onnx.twin.registry import Converted, NodeContext, converter


class Reduce(ConstantsOp):
    """Reduce with ``mean``, ``max`` or ``sum`` over the given axes (all when none are given)."""

    static_inputs = (1,)

    def __init__(self, kind: str, axes: list[int] | None, keepdims: bool, noop_empty: bool) -> None:
        super().__init__()
        self.kind, self.axes, self.keepdims, self.noop_empty = kind, axes, keepdims, noop_empty

    def compute(self, x, axes=None):
        given = self.axes if self.axes is not None else (int_list(axes) if axes is not None else [])
        if not given:
            if self.noop_empty:
                return x
            given = list(range(x.dim()))
        dims = tuple(sorted({a + x.dim() if a < 0 else a for a in given}))
        if self.kind == "mean":
            return x.mean(dim=dims, keepdim=self.keepdims)
        if self.kind == "sum":
            return x.sum(dim=dims, keepdim=self.keepdims)
        if any(x.shape[d] == 0 for d in dims):
            return _empty_max(x, dims, self.keepdims)
        return x.amax(dim=dims, keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"{self.kind}, axes={self.axes}, keepdims={self.keepdims}, noop_empty={self.noop_empty}"


def _empty_max(x: torch.Tensor, dims: tuple[int, ...], keepdims: bool) -> torch.Tensor:
    """ReduceMax over ``dims`` of which one is empty: the lowest value of ``x``'s dtype."""
    if x.dtype == torch.bool:
        lowest = False
    elif x.is_floating_point():
        lowest = float("-inf")
    else:
        lowest = torch.iinfo(x.dtype).min
    shape = [1 if d in dims else n for d, n in enumerate(x.shape) if keepdims or d not in dims]
    return torch.full(shape, lowest, dtype=x.dtype, device=x.device)


def _reduce(ctx: NodeContext, kind: str, input_since: int) -> Converted:
    keepdims = bool(ctx.attr("keepdims", 1))
    if ctx.since_version < input_since:
        ctx.check_attributes({"axes", "keepdims"})
        axes = ctx.attr("axes")
        module = Reduce(kind, [int(a) for a in axes] if axes is not None else None, keepdims, False)
        return bind(ctx, module, n_inputs=1)
    ctx.check_attributes({"keepdims", "noop_with_empty_axes"})
    noop = bool(ctx.attr("noop_with_empty_axes", 0))
    return bind(ctx, Reduce(kind, None, keepdims, noop), n_inputs=2)


@converter("ReduceMean", versions=(1, 11, 13, 18))
def convert_reduce_mean(ctx: NodeContext) -> Converted:
    """Convert ReduceMean (axes input from opset 18)."""
    return _reduce(ctx, "mean", 18)


@converter("ReduceMax", versions=(1, 11, 12, 13, 18, 20))
def convert_reduce_max(ctx: NodeContext) -> Converted:
    """Convert ReduceMax (axes input from opset 18)."""
    refuse_input_dtypes(ctx, NO_TORCH_ARITHMETIC)
    return _reduce(ctx, "max", 18)


@converter("ReduceSum", versions=(1, 11, 13))
def convert_reduce_sum(ctx: NodeContext) -> Converted:
    """Convert ReduceSum (axes input from opset 13)."""
    return _reduce(ctx, "sum", 13)

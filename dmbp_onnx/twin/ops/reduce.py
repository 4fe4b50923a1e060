"""ReduceMean, ReduceMax, ReduceSum: ``axes`` attribute or input by revision, ``keepdims``,
``noop_with_empty_axes``."""

from __future__ import annotations

from dmbp_onnx.twin.ops.common import ConstantsOp, bind, int_list
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
        return x.amax(dim=dims, keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"{self.kind}, axes={self.axes}, keepdims={self.keepdims}, noop_empty={self.noop_empty}"


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
    return _reduce(ctx, "max", 18)


@converter("ReduceSum", versions=(1, 11, 13))
def convert_reduce_sum(ctx: NodeContext) -> Converted:
    """Convert ReduceSum (axes input from opset 13)."""
    return _reduce(ctx, "sum", 13)

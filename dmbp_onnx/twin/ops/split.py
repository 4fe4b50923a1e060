"""Split: one tensor into several along an axis.

The part sizes come from the ``split`` attribute (revisions 2 and 11), the ``split``
input (13 and 18) or, from 18, the ``num_outputs`` attribute (parts of
``ceil(size / num_outputs)``, the last one smaller); without any of them the node's
outputs are equal parts. Its traits (piecewise linear when ``split`` is constant) are
the ``Split`` entry of :mod:`dmbp_onnx.op_traits`.
"""

from __future__ import annotations

import math

import torch

from dmbp_onnx.twin.ops.common import ConstantsOp, bind, int_list
from dmbp_onnx.twin.registry import Converted, NodeContext, converter


class Split(ConstantsOp):
    """``x`` split along ``axis`` into ``outputs`` parts (a tuple of tensors).

    Parameters
    ----------
    axis : int
        The axis split (negative counts from the end).
    outputs : int
        Number of parts (the node's outputs).
    sizes : list of int, optional
        Part sizes from the attribute; otherwise the ``split`` input, else equal parts.
    ceil_parts : bool
        Parts of ``ceil(size / outputs)`` with a smaller last one (``num_outputs``, revision
        18), instead of parts that must divide the axis evenly.
    """

    static_inputs = (1,)

    def __init__(self, axis: int, outputs: int, sizes: list[int] | None = None, ceil_parts: bool = False) -> None:
        super().__init__()
        self.axis, self.outputs, self.sizes, self.ceil_parts = axis, outputs, sizes, ceil_parts

    def compute(self, x: torch.Tensor, split=None) -> tuple[torch.Tensor, ...]:
        axis = self.axis + x.dim() if self.axis < 0 else self.axis
        length = x.shape[axis]
        sizes = self.sizes if self.sizes is not None else int_list(split) if split is not None else None
        if sizes is None:
            if self.ceil_parts:
                part = math.ceil(length / self.outputs)
                sizes = [min(part, max(0, length - k * part)) for k in range(self.outputs)]
            elif length % self.outputs:
                raise ValueError(f"Split: axis {axis} of size {length} does not divide into {self.outputs} parts")
            else:
                sizes = [length // self.outputs] * self.outputs
        if len(sizes) != self.outputs or sum(sizes) != length:
            raise ValueError(f"Split: sizes {sizes} do not give {self.outputs} parts of axis {axis} (size {length})")
        return tuple(torch.split(x, sizes, dim=axis))

    def extra_repr(self) -> str:
        return f"axis={self.axis}, outputs={self.outputs}, sizes={self.sizes}, ceil_parts={self.ceil_parts}"


@converter("Split", versions=(2, 11, 13, 18))
def convert_split(ctx: NodeContext) -> Converted:
    """Convert Split (``split`` attribute before revision 13, input from 13; ``num_outputs`` at 18)."""
    outputs = len(ctx.node.outputs)
    if ctx.since_version < 13:
        ctx.check_attributes({"axis", "split"})
        sizes = ctx.attr("split")
        module = Split(int(ctx.attr("axis", 0)), outputs, [int(v) for v in sizes] if sizes is not None else None)
        return bind(ctx, module, n_inputs=1)
    ctx.check_attributes({"axis", "num_outputs"} if ctx.since_version >= 18 else {"axis"})
    num_outputs = ctx.attr("num_outputs")
    if num_outputs is not None:
        if ctx.has_input(1):
            raise ctx.fail("both the 'split' input and the 'num_outputs' attribute are given")
        if int(num_outputs) != outputs:
            raise ctx.fail(f"num_outputs={num_outputs} but the node has {outputs} outputs")
    return bind(ctx, Split(int(ctx.attr("axis", 0)), outputs, ceil_parts=num_outputs is not None))

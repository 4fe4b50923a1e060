"""Shape and data-movement ops.

Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Expand, Concat, Shape, Gather,
Slice, ConstantOfShape, Range, Identity, Dropout (inference) and Constant.
Shape tensors stay runtime ``int64`` torch tensors, so a dynamic
Shape -> Gather -> Unsqueeze -> Concat -> Reshape chain runs at any batch size;
Reshape turns its shape tensor into a list only when it runs.
"""

from __future__ import annotations

import math

import numpy as np
import onnx_graphsurgeon as gs
import torch

from dmbp_onnx.twin.ops.common import ConstantsOp, bind, int_list
from dmbp_onnx.twin.registry import Converted, NodeContext, converter


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


class Flatten(ConstantsOp):
    """ONNX Flatten: 2-D ``(prod(shape[:axis]), prod(shape[axis:]))``."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def compute(self, x):
        axis = _axis(self.axis, x.dim())
        return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


@converter("Flatten", versions=(1, 9, 11, 13, 21, 23))
def convert_flatten(ctx: NodeContext) -> Converted:
    """Convert Flatten (negative axis from opset 11)."""
    ctx.check_attributes({"axis"})
    return bind(ctx, Flatten(int(ctx.attr("axis", 1))))


class Reshape(ConstantsOp):
    """ONNX Reshape: ``0`` copies the input dim (unless ``allowzero``), ``-1`` is inferred."""

    static_inputs = (1,)

    def __init__(self, allowzero: bool) -> None:
        super().__init__()
        self.allowzero = allowzero

    def compute(self, x, shape):
        dims = int_list(shape)
        if not self.allowzero:
            dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]
        return x.reshape(dims)

    def extra_repr(self) -> str:
        return f"allowzero={self.allowzero}"


@converter("Reshape", versions=(5, 13, 14, 19, 21, 23))
def convert_reshape(ctx: NodeContext) -> Converted:
    """Convert Reshape with a constant or runtime int64 shape (``allowzero`` from opset 14)."""
    ctx.check_attributes({"allowzero"} if ctx.since_version >= 14 else set())
    return bind(ctx, Reshape(bool(ctx.attr("allowzero", 0))))


class Transpose(ConstantsOp):
    """``x.permute(perm)``; the default reverses the axes."""

    def __init__(self, perm: list[int] | None) -> None:
        super().__init__()
        self.perm = perm

    def compute(self, x):
        perm = self.perm if self.perm is not None else list(reversed(range(x.dim())))
        return x.permute(perm)

    def extra_repr(self) -> str:
        return f"perm={self.perm}"


@converter("Transpose", versions=(1, 13, 21, 23))
def convert_transpose(ctx: NodeContext) -> Converted:
    """Convert Transpose."""
    ctx.check_attributes({"perm"})
    perm = ctx.attr("perm")
    return bind(ctx, Transpose([int(p) for p in perm] if perm is not None else None))


class Squeeze(ConstantsOp):
    """Remove the given size-1 axes (all size-1 axes when none are given)."""

    static_inputs = (1,)

    def __init__(self, axes: list[int] | None) -> None:
        super().__init__()
        self.axes = axes

    def compute(self, x, axes=None):
        given = self.axes if self.axes is not None else (int_list(axes) if axes is not None else None)
        if given is None:
            given = [i for i, d in enumerate(x.shape) if d == 1]
        keep = sorted(_axis(a, x.dim()) for a in given)
        for axis in keep:
            if x.shape[axis] != 1:
                raise ValueError(f"Squeeze axis {axis} has size {x.shape[axis]}, not 1")
        return x.reshape([d for i, d in enumerate(x.shape) if i not in keep])

    def extra_repr(self) -> str:
        return f"axes={self.axes}"


class Unsqueeze(ConstantsOp):
    """Insert size-1 axes at the given positions of the output."""

    static_inputs = (1,)

    def __init__(self, axes: list[int] | None) -> None:
        super().__init__()
        self.axes = axes

    def compute(self, x, axes=None):
        given = self.axes if self.axes is not None else int_list(axes)
        rank = x.dim() + len(given)
        shape = list(x.shape)
        for axis in sorted(_axis(a, rank) for a in given):
            shape.insert(axis, 1)
        return x.reshape(shape)

    def extra_repr(self) -> str:
        return f"axes={self.axes}"


def _axes_op(ctx: NodeContext, cls, required: bool) -> Converted:
    if ctx.since_version < 13:
        ctx.check_attributes({"axes"})
        axes = ctx.attr("axes")
        if axes is None and required:
            raise ctx.fail("attribute 'axes' is required")
        return bind(ctx, cls([int(a) for a in axes] if axes is not None else None), n_inputs=1)
    ctx.check_attributes(set())
    if required and not ctx.has_input(1):
        raise ctx.fail("input 'axes' is required")
    return bind(ctx, cls(None))


@converter("Squeeze", versions=(1, 11, 13, 21, 23))
def convert_squeeze(ctx: NodeContext) -> Converted:
    """Convert Squeeze (axes attribute before opset 13, input from 13)."""
    return _axes_op(ctx, Squeeze, required=False)


@converter("Unsqueeze", versions=(1, 11, 13, 21, 23))
def convert_unsqueeze(ctx: NodeContext) -> Converted:
    """Convert Unsqueeze (axes attribute before opset 13, input from 13)."""
    return _axes_op(ctx, Unsqueeze, required=True)


class Expand(ConstantsOp):
    """ONNX Expand: ``x`` broadcast against ``shape`` both ways (numpy rules), as a copy."""

    static_inputs = (1,)

    def compute(self, x, shape):
        target = torch.broadcast_shapes(tuple(x.shape), tuple(int_list(shape)))
        return x.expand(target).contiguous()  # no zero-stride view reaches an in-place op


@converter("Expand", versions=(8, 13))
def convert_expand(ctx: NodeContext) -> Converted:
    """Convert Expand with a constant or runtime int64 shape."""
    ctx.check_attributes(set())
    return bind(ctx, Expand())


class Concat(ConstantsOp):
    """``torch.cat`` along ``axis``."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def compute(self, *xs):
        return torch.cat(xs, dim=_axis(self.axis, xs[0].dim()))

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


@converter("Concat", versions=(4, 11, 13))
def convert_concat(ctx: NodeContext) -> Converted:
    """Convert Concat (float tensors and int64 shape tensors alike)."""
    ctx.check_attributes({"axis"})
    axis = ctx.attr("axis")
    if axis is None:
        raise ctx.fail("attribute 'axis' is required")
    return bind(ctx, Concat(int(axis)))


class Shape(ConstantsOp):
    """The input's shape as a runtime int64 tensor, optionally sliced ``[start:end]``."""

    def __init__(self, start: int, end: int | None) -> None:
        super().__init__()
        self.start, self.end = start, end

    def compute(self, x):
        dims = list(x.shape)[self.start : self.end]
        return torch.tensor(dims, dtype=torch.int64, device=x.device)

    def extra_repr(self) -> str:
        return f"start={self.start}, end={self.end}"


@converter("Shape", versions=(1, 13, 15, 19, 21, 23))
def convert_shape(ctx: NodeContext) -> Converted:
    """Convert Shape (``start``/``end`` from opset 15, clamped as Python slicing does)."""
    ctx.check_attributes({"start", "end"} if ctx.since_version >= 15 else set())
    end = ctx.attr("end")
    return bind(ctx, Shape(int(ctx.attr("start", 0)), int(end) if end is not None else None))


class Gather(ConstantsOp):
    """ONNX Gather along ``axis`` (negative indices count from the end)."""

    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def compute(self, data, indices):
        axis = _axis(self.axis, data.dim())
        size = data.shape[axis]
        idx = torch.where(indices < 0, indices + size, indices).to(torch.int64)
        flat = torch.index_select(data, axis, idx.reshape(-1))
        return flat.reshape(list(data.shape[:axis]) + list(idx.shape) + list(data.shape[axis + 1 :]))

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


@converter("Gather", versions=(1, 11, 13))
def convert_gather(ctx: NodeContext) -> Converted:
    """Convert Gather."""
    ctx.check_attributes({"axis"})
    return bind(ctx, Gather(int(ctx.attr("axis", 0))))


def _slice_axis(x: torch.Tensor, axis: int, start: int, end: int, step: int) -> torch.Tensor:
    size = x.shape[axis]
    if step == 0:
        raise ValueError("Slice step must not be 0")
    if start < 0:
        start += size
    if end < 0:
        end += size
    if step > 0:
        start, end = min(max(start, 0), size), min(max(end, 0), size)
        return x.narrow(axis, start, max(end - start, 0))[
            (slice(None),) * axis + (slice(None, None, step),)
        ]
    start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
    index = torch.arange(start, end, step, device=x.device)
    return torch.index_select(x, axis, index)


class Slice(ConstantsOp):
    """ONNX Slice with clamped starts/ends, optional axes and (negative) steps."""

    static_inputs = (1, 2, 3, 4)

    def __init__(self, starts=None, ends=None, axes=None) -> None:
        super().__init__()
        self.starts, self.ends, self.axes = starts, ends, axes

    def compute(self, x, starts=None, ends=None, axes=None, steps=None):
        starts = self.starts if self.starts is not None else int_list(starts)
        ends = self.ends if self.ends is not None else int_list(ends)
        if self.axes is not None:
            axes = self.axes
        else:
            axes = int_list(axes) if axes is not None else list(range(len(starts)))
        steps = int_list(steps) if steps is not None else [1] * len(starts)
        for axis, start, end, step in zip(axes, starts, ends, steps):
            x = _slice_axis(x, _axis(axis, x.dim()), start, end, step)
        return x

    def extra_repr(self) -> str:
        return f"starts={self.starts}, ends={self.ends}, axes={self.axes}"


@converter("Slice", versions=(1, 10, 11, 13))
def convert_slice(ctx: NodeContext) -> Converted:
    """Convert Slice (attributes at opset 1, inputs from 10)."""
    if ctx.since_version == 1:
        ctx.check_attributes({"starts", "ends", "axes"})
        axes = ctx.attr("axes")
        module = Slice(
            [int(v) for v in ctx.attr("starts")],
            [int(v) for v in ctx.attr("ends")],
            [int(v) for v in axes] if axes is not None else None,
        )
        return bind(ctx, module, n_inputs=1)
    ctx.check_attributes(set())
    return bind(ctx, Slice())


class ConstantOfShape(ConstantsOp):
    """A tensor of the runtime shape filled with one value."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.fill, self.dtype = value.reshape(()).item(), value.dtype

    def compute(self, shape):
        return torch.full(int_list(shape), self.fill, dtype=self.dtype, device=shape.device)

    def extra_repr(self) -> str:
        return f"fill={self.fill}, dtype={self.dtype}"


@converter("ConstantOfShape", versions=(9, 20, 21, 23))
def convert_constant_of_shape(ctx: NodeContext) -> Converted:
    """Convert ConstantOfShape (default value float32 0)."""
    ctx.check_attributes({"value"})
    value = ctx.attr("value")
    array = np.zeros(1, np.float32) if value is None else np.asarray(_attr_array(value))
    if array.size != 1:
        raise ctx.fail(f"attribute 'value' must have one element, has {array.size}")
    if array.dtype.kind not in "biuf":
        raise ctx.fail(f"value of type {array.dtype} is not supported")
    return bind(ctx, ConstantOfShape(torch.from_numpy(array.copy())))


class Range(ConstantsOp):
    """``start + i * delta`` for ``i < max(ceil((limit - start) / delta), 0)``."""

    def compute(self, start, limit, delta):
        count = max(math.ceil((limit.item() - start.item()) / delta.item()), 0)
        steps = torch.arange(count, device=start.device).to(start.dtype)
        return start + steps * delta


@converter("Range", versions=(11,))
def convert_range(ctx: NodeContext) -> Converted:
    """Convert Range."""
    ctx.check_attributes(set())
    return bind(ctx, Range())


class Identity(ConstantsOp):
    """Returns its input; as inference Dropout, optionally with an all-true mask.

    Parameters
    ----------
    mask : {"none", "bool", "like"}
        Second output: none, a bool mask (Dropout 10+), or ones of the input's dtype (Dropout 7).
    """

    def __init__(self, mask: str = "none") -> None:
        super().__init__()
        self.mask = mask

    def compute(self, x, *unused):
        if self.mask == "none":
            return x
        return x, torch.ones_like(x, dtype=torch.bool if self.mask == "bool" else x.dtype)

    def extra_repr(self) -> str:
        return f"mask={self.mask}"


@converter("Identity", versions=(1, 13, 14, 16, 19, 21, 23))
def convert_identity(ctx: NodeContext) -> Converted:
    """Convert Identity (tensors only)."""
    ctx.check_attributes(set())
    return bind(ctx, Identity())


@converter("Dropout", versions=(7, 10, 12, 13, 22))
def convert_dropout(ctx: NodeContext) -> Converted:
    """Convert Dropout in inference mode (identity); training mode or a consumed mask is refused."""
    ctx.check_attributes({"ratio", "seed"})
    ctx.attr("ratio")
    ctx.attr("seed")
    if ctx.has_input(2):
        if not ctx.is_constant(2):
            raise ctx.fail("a runtime 'training_mode' input is not supported")
        if bool(np.asarray(ctx.constant(2)).reshape(-1)[0]):
            raise ctx.fail("training_mode=1 is not supported")
    if len(ctx.node.outputs) > 1 and ctx.node.outputs[1].name:
        if ctx.node.outputs[1].outputs:
            raise ctx.fail("the 'mask' output is used, which is not supported")
        return bind(ctx, Identity("bool" if ctx.since_version >= 10 else "like"), n_inputs=1)
    return bind(ctx, Identity(), n_inputs=1)


def _attr_array(value) -> np.ndarray:
    return np.asarray(value.values if isinstance(value, gs.Constant) else value)


class ConstantValue(ConstantsOp):
    """Returns a constant tensor held as a buffer."""

    def __init__(self, value: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("value", torch.from_numpy(np.array(value, copy=True)))

    def compute(self):
        return self.value


_CONSTANT_ATTRS = {
    "value": None,
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


@converter("Constant", versions=(1, 9, 11, 12, 13, 19, 21, 23))
def convert_constant(ctx: NodeContext) -> Converted:
    """Convert a Constant node that survived folding (dense numeric values only)."""
    present = [k for k in ctx.node.attrs]
    for key in present:
        if key not in _CONSTANT_ATTRS:
            raise ctx.fail(f"attribute '{key}' is not supported")
    if len(present) != 1:
        raise ctx.fail(f"exactly one value attribute expected, got {present}")
    key = present[0]
    array = _attr_array(ctx.attr(key))
    if _CONSTANT_ATTRS[key] is not None:
        array = array.astype(_CONSTANT_ATTRS[key])
    if array.dtype.kind not in "biuf":
        raise ctx.fail(f"constant of type {array.dtype} is not supported")
    return bind(ctx, ConstantValue(array), n_inputs=0)

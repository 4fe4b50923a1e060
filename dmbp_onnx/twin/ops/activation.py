"""Activations: Relu, LeakyRelu, PRelu, Clip, Sigmoid, Tanh, Softmax, LogSoftmax."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dmbp_onnx.twin.ops.common import ConstantsOp, bind, frozen
from dmbp_onnx.twin.registry import Converted, NodeContext, converter


@converter("Relu", versions=(1, 6, 13, 14))
def convert_relu(ctx: NodeContext) -> Converted:
    """Convert Relu into ``nn.ReLU`` (a fresh module per node, never shared)."""
    ctx.check_attributes({"consumed_inputs"} if ctx.since_version == 1 else set())
    return Converted(nn.ReLU(), [0])


@converter("LeakyRelu", versions=(6, 16))
def convert_leaky_relu(ctx: NodeContext) -> Converted:
    """Convert LeakyRelu into ``nn.LeakyReLU``."""
    ctx.check_attributes({"alpha"})
    return Converted(nn.LeakyReLU(float(np.float32(ctx.attr("alpha", 0.01)))), [0])


class PReluOp(ConstantsOp):
    """``x if x >= 0 else slope * x`` with the slope broadcast to ``x``."""

    def compute(self, x, slope):
        return torch.where(x < 0, x * slope, x)


@converter("PRelu", versions=(7, 9, 16))
def convert_prelu(ctx: NodeContext) -> Converted:
    """Convert PRelu; ``nn.PReLU`` when the slope is a constant per-channel or scalar slope."""
    ctx.check_attributes(set())
    if ctx.is_constant(1) and not ctx.is_constant(0):
        slope = ctx.constant_tensor(1)
        shape = ctx.node.inputs[0].shape
        rank = len(shape) if shape is not None else None
        per_channel = (
            rank is not None
            and rank >= 2
            and slope.dim() == rank - 1
            and all(d == 1 for d in slope.shape[1:])
        )
        if slope.dtype == torch.float32 and (slope.numel() == 1 and slope.dim() <= 1 or per_channel):
            layer = nn.PReLU(slope.shape[0] if per_channel else 1)
            with torch.no_grad():
                layer.weight.copy_(slope.reshape(-1))
            return Converted(frozen(layer), [0])
    return bind(ctx, PReluOp())


class ClipOp(ConstantsOp):
    """``min(max(x, low), high)`` with runtime or absent bounds."""

    def compute(self, x, low=None, high=None):
        if low is not None:
            x = torch.maximum(x, low.to(x.dtype))
        if high is not None:
            x = torch.minimum(x, high.to(x.dtype))
        return x


@converter("Clip", versions=(6, 11, 12, 13))
def convert_clip(ctx: NodeContext) -> Converted:
    """Convert Clip (attributes before opset 11, inputs from 11); ``nn.ReLU6``/``nn.Hardtanh`` when constant."""
    if ctx.since_version == 6:
        ctx.check_attributes({"min", "max"})
        low = float(ctx.attr("min", -np.finfo(np.float32).max))
        high = float(ctx.attr("max", np.finfo(np.float32).max))
    else:
        ctx.check_attributes(set())
        if ctx.variable_inputs() != [0]:
            return bind(ctx, ClipOp())
        low = float(ctx.constant(1).reshape(())) if ctx.has_input(1) else -math.inf
        high = float(ctx.constant(2).reshape(())) if ctx.has_input(2) else math.inf
        dtype = ctx.node.inputs[0].dtype
        if dtype is not None and np.dtype(dtype) != np.float32:
            return bind(ctx, ClipOp())
    if low == 0.0 and high == 6.0:
        return Converted(nn.ReLU6(), [0])
    if low <= high:
        return Converted(nn.Hardtanh(low, high), [0])
    return Converted(nn.Hardtanh(high, high), [0])


@converter("Sigmoid", versions=(6, 13))
def convert_sigmoid(ctx: NodeContext) -> Converted:
    """Convert Sigmoid into ``nn.Sigmoid``."""
    ctx.check_attributes(set())
    return Converted(nn.Sigmoid(), [0])


@converter("Tanh", versions=(6, 13))
def convert_tanh(ctx: NodeContext) -> Converted:
    """Convert Tanh into ``nn.Tanh``."""
    ctx.check_attributes(set())
    return Converted(nn.Tanh(), [0])


class CoercedSoftmax(ConstantsOp):
    """Softmax/LogSoftmax before opset 13: over the flattened axes ``[axis:]`` of a 2-D view."""

    def __init__(self, axis: int, log: bool) -> None:
        super().__init__()
        self.axis, self.log = axis, log

    def compute(self, x):
        axis = self.axis + x.dim() if self.axis < 0 else self.axis
        flat = x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
        out = torch.log_softmax(flat, dim=1) if self.log else torch.softmax(flat, dim=1)
        return out.reshape(x.shape)

    def extra_repr(self) -> str:
        return f"axis={self.axis}, log={self.log}"


def _softmax(ctx: NodeContext, log: bool) -> Converted:
    ctx.check_attributes({"axis"})
    cls = nn.LogSoftmax if log else nn.Softmax
    if ctx.since_version >= 13:
        return Converted(cls(dim=int(ctx.attr("axis", -1))), [0])
    axis = int(ctx.attr("axis", 1))
    shape = ctx.node.inputs[0].shape
    if axis == -1 or (shape is not None and axis == len(shape) - 1):
        return Converted(cls(dim=-1), [0])
    return bind(ctx, CoercedSoftmax(axis, log))


@converter("Softmax", versions=(1, 11, 13))
def convert_softmax(ctx: NodeContext) -> Converted:
    """Convert Softmax (opset < 13 coerces the input to 2-D at ``axis``)."""
    return _softmax(ctx, log=False)


@converter("LogSoftmax", versions=(1, 11, 13))
def convert_log_softmax(ctx: NodeContext) -> Converted:
    """Convert LogSoftmax (opset < 13 coerces the input to 2-D at ``axis``)."""
    return _softmax(ctx, log=True)

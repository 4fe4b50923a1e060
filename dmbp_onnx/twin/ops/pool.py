"""Pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.

``nn.MaxPoolNd`` / ``nn.AvgPoolNd`` are used whenever their semantics equal
ONNX's (symmetric pads no larger than half the kernel; for averages also no
dilation and no ceil_mode). Everything else (asymmetric pads, SAME pads,
ceil_mode averages, dilated averages) runs as explicit padding to the exact
ONNX output size followed by a pad-free pooling; averages divide a window sum
by a window count computed the same way from a ones mask, so the divisor is
exactly ONNX's (``count_include_pad`` counts explicit pads, never the ceil_mode
overhang).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dmbp_onnx.twin.ops.common import ConstantsOp, bind, same_pads, torch_pad_order
from dmbp_onnx.twin.registry import Converted, NodeContext, converter

_MAX = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_MAX_FN = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}


def pool_output_size(size: int, k: int, s: int, d: int, begin: int, end: int, ceil: bool) -> int:
    """ONNX pool output length; with ``ceil`` a window starting in the end padding is dropped."""
    span = size + begin + end - ((k - 1) * d + 1)
    if not ceil:
        return span // s + 1
    out = math.ceil(span / s) + 1
    if (out - 1) * s >= size + begin:
        out -= 1
    return out


class Pool(nn.Module):
    """Exact ONNX pooling through explicit padding to the ONNX output size.

    Parameters
    ----------
    mode : {"max", "avg"}
        Pooling kind.
    kernel, strides, dilations : list of int
        Per spatial axis.
    pads : list of int or None
        ONNX ``[begins..., ends...]``; None with ``auto_pad`` SAME_*.
    upper : bool
        SAME_UPPER (True) or SAME_LOWER when ``pads`` is None.
    ceil : bool
        ``ceil_mode``.
    count_include_pad : bool
        Averages divide by the window's count of input and explicit pad cells.
    """

    def __init__(self, mode, kernel, strides, dilations, pads, upper, ceil, count_include_pad) -> None:
        super().__init__()
        self.mode, self.kernel, self.strides, self.dilations = mode, kernel, strides, dilations
        self.pads, self.upper, self.ceil, self.count_include_pad = pads, upper, ceil, count_include_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.kernel)
        sizes = list(x.shape[2:])
        pads = self.pads
        if pads is None:
            pads = same_pads(sizes, self.kernel, self.strides, self.dilations, self.upper)
        begins, ends = list(pads[:n]), []
        for i in range(n):
            out = pool_output_size(
                sizes[i], self.kernel[i], self.strides[i], self.dilations[i], pads[i], pads[i + n], self.ceil
            )
            needed = (out - 1) * self.strides[i] + (self.kernel[i] - 1) * self.dilations[i] + 1
            ends.append(needed - sizes[i] - begins[i])
        order = torch_pad_order(begins + ends)
        if self.mode == "max":
            padded = F.pad(x, order, value=-math.inf)
            return _MAX_FN[n](padded, self.kernel, self.strides, 0, self.dilations)
        ones = torch.ones([1, 1] + sizes, dtype=x.dtype, device=x.device)
        if self.count_include_pad:
            within = [min(e, p) for e, p in zip(ends, pads[n:])]
            ones = F.pad(ones, torch_pad_order(begins + within), value=1.0)
            ones = F.pad(ones, torch_pad_order([0] * n + [e - w for e, w in zip(ends, within)]))
        else:
            ones = F.pad(ones, order)
        weight = torch.ones([1, 1] + list(self.kernel), dtype=x.dtype, device=x.device)
        conv = _CONV[n]
        batch, channels = x.shape[0], x.shape[1]
        flat = F.pad(x, order).reshape([batch * channels, 1] + list(ones.shape[2:]))
        total = conv(flat, weight, None, self.strides, 0, self.dilations)
        count = conv(ones, weight, None, self.strides, 0, self.dilations)
        return (total / count).reshape([batch, channels] + list(total.shape[2:]))

    def extra_repr(self) -> str:
        return (
            f"{self.mode}, kernel={self.kernel}, strides={self.strides}, dilations={self.dilations}, "
            f"pads={self.pads}, ceil={self.ceil}, count_include_pad={self.count_include_pad}"
        )


class DropSecond(nn.Module):
    """Runs ``inner`` and adds an unused second output (an unconsumed Indices)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor):
        return self.inner(x), None


def _pool_params(ctx: NodeContext):
    kernel = ctx.attr("kernel_shape")
    if kernel is None:
        raise ctx.fail("attribute 'kernel_shape' is required")
    kernel = [int(k) for k in kernel]
    n = len(kernel)
    if n not in _MAX:
        raise ctx.fail(f"{n}-D pooling is not supported")
    strides = [int(s) for s in ctx.attr("strides") or [1] * n]
    dilations = [int(d) for d in ctx.attr("dilations") or [1] * n]
    pads = [int(p) for p in ctx.attr("pads") or [0] * (2 * n)]
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    ceil = bool(ctx.attr("ceil_mode", 0))
    if auto_pad == "VALID":
        pads = [0] * (2 * n)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = None
    elif auto_pad != "NOTSET":
        raise ctx.fail(f"auto_pad '{auto_pad}' is not supported")
    return kernel, strides, dilations, pads, auto_pad == "SAME_UPPER", ceil


def _symmetric_small(pads: Sequence[int] | None, kernel: Sequence[int]) -> bool:
    if pads is None:
        return False
    n = len(kernel)
    return list(pads[:n]) == list(pads[n:]) and all(p <= k // 2 for p, k in zip(pads[:n], kernel))


def _indices_guard(ctx: NodeContext, module: nn.Module) -> Converted:
    if len(ctx.node.outputs) > 1 and ctx.node.outputs[1].name:
        indices = ctx.node.outputs[1]
        if indices.outputs or indices.name in ctx.graph_outputs:
            raise ctx.fail("the 'Indices' output is used, which is not supported")
        module = DropSecond(module)
    return Converted(module, [0])


@converter("MaxPool", versions=(1, 8, 10, 11, 12, 22))
def convert_maxpool(ctx: NodeContext) -> Converted:
    """Convert MaxPool (``storage_order`` 0 only; an unused Indices output is allowed)."""
    allowed = {"auto_pad", "kernel_shape", "pads", "strides"}
    if ctx.since_version >= 8:
        allowed.add("storage_order")
    if ctx.since_version >= 10:
        allowed |= {"ceil_mode", "dilations"}
    ctx.check_attributes(allowed)
    if int(ctx.attr("storage_order", 0)) != 0:
        raise ctx.fail("storage_order=1 is not supported")
    kernel, strides, dilations, pads, upper, ceil = _pool_params(ctx)
    n = len(kernel)
    if _symmetric_small(pads, kernel):
        module = _MAX[n](kernel, strides, pads[:n], dilations, ceil_mode=ceil)
    else:
        module = Pool("max", kernel, strides, dilations, pads, upper, ceil, False)
    return _indices_guard(ctx, module)


@converter("AveragePool", versions=(7, 10, 11, 19, 22))
def convert_averagepool(ctx: NodeContext) -> Converted:
    """Convert AveragePool (``count_include_pad``, ``ceil_mode`` from 10, ``dilations`` from 19)."""
    allowed = {"auto_pad", "kernel_shape", "pads", "strides", "count_include_pad"}
    if ctx.since_version >= 10:
        allowed.add("ceil_mode")
    if ctx.since_version >= 19:
        allowed.add("dilations")
    ctx.check_attributes(allowed)
    include = bool(ctx.attr("count_include_pad", 0))
    kernel, strides, dilations, pads, upper, ceil = _pool_params(ctx)
    n = len(kernel)
    if _symmetric_small(pads, kernel) and not ceil and all(d == 1 for d in dilations):
        module = _AVG[n](kernel, strides, pads[:n], ceil_mode=False, count_include_pad=include)
    else:
        module = Pool("avg", kernel, strides, dilations, pads, upper, ceil, include)
    return Converted(module, [0])


class GlobalPool(ConstantsOp):
    """Mean or max over every axis after the channel axis, kept as size 1."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def compute(self, x):
        dims = tuple(range(2, x.dim()))
        if self.mode == "avg":
            return x.mean(dim=dims, keepdim=True)
        return x.amax(dim=dims, keepdim=True)

    def extra_repr(self) -> str:
        return self.mode


def _global(ctx: NodeContext, mode: str) -> Converted:
    ctx.check_attributes(set())
    shape = ctx.node.inputs[0].shape
    rank = len(shape) if shape is not None else None
    if rank in (3, 4, 5):
        cls = {"avg": (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
               "max": (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)}[mode][rank - 3]
        return Converted(cls(1), [0])
    return bind(ctx, GlobalPool(mode))


@converter("GlobalAveragePool", versions=(1, 22))
def convert_global_average_pool(ctx: NodeContext) -> Converted:
    """Convert GlobalAveragePool (``nn.AdaptiveAvgPoolNd(1)`` when the rank is known)."""
    return _global(ctx, "avg")


@converter("GlobalMaxPool", versions=(1, 22))
def convert_global_max_pool(ctx: NodeContext) -> Converted:
    """Convert GlobalMaxPool (``nn.AdaptiveMaxPoolNd(1)`` when the rank is known)."""
    return _global(ctx, "max")

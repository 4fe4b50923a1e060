"""Conv (opset 1, 11, 22): 1-D/2-D/3-D, groups, dilations, strides, explicit or auto pads."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dmbp_onnx.twin.ops.common import same_pads, torch_pad_order
from dmbp_onnx.twin.registry import Converted, NodeContext, converter

_CONV_CLASSES = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class AutoPadConv(nn.Module):
    """A conv whose SAME pads depend on the runtime spatial size (``auto_pad`` SAME_*)."""

    def __init__(self, conv: nn.Module, kernel: Sequence[int], upper: bool) -> None:
        super().__init__()
        self.conv = conv
        self.kernel = list(kernel)
        self.upper = upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_pads(
            list(x.shape[2:]), self.kernel, list(self.conv.stride), list(self.conv.dilation), self.upper
        )
        if any(pads):
            x = F.pad(x, torch_pad_order(pads))
        return self.conv(x)


class PaddedConv(nn.Module):
    """A conv preceded by explicit asymmetric zero padding."""

    def __init__(self, conv: nn.Module, pads: Sequence[int]) -> None:
        super().__init__()
        self.conv = conv
        self.pads = torch_pad_order(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.pads))


@converter("Conv", versions=(1, 11, 22))
def convert_conv(ctx: NodeContext) -> Converted:
    """Convert an ONNX Conv node into ``nn.ConvNd`` (plus padding when asymmetric or SAME)."""
    ctx.check_attributes({"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"})
    weight = ctx.constant_tensor(1)
    bias = ctx.constant_tensor(2) if ctx.has_input(2) else None
    spatial = weight.dim() - 2
    if spatial not in _CONV_CLASSES:
        raise ctx.fail(f"{spatial}-D convolution is not supported (weight shape {tuple(weight.shape)})")
    kernel = list(ctx.attr("kernel_shape") or weight.shape[2:])
    if kernel != list(weight.shape[2:]):
        raise ctx.fail(f"kernel_shape {kernel} disagrees with weight shape {tuple(weight.shape)}")
    strides = list(ctx.attr("strides") or [1] * spatial)
    dilations = list(ctx.attr("dilations") or [1] * spatial)
    group = int(ctx.attr("group", 1))
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    pads = list(ctx.attr("pads") or [0] * (2 * spatial))
    conv = _CONV_CLASSES[spatial](
        in_channels=weight.shape[1] * group,
        out_channels=weight.shape[0],
        kernel_size=kernel,
        stride=strides,
        dilation=dilations,
        groups=group,
        bias=bias is not None,
        padding=0,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None:
            conv.bias.copy_(bias)
    conv.requires_grad_(False)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return Converted(AutoPadConv(conv, kernel, upper=auto_pad == "SAME_UPPER"), [0])
    if auto_pad not in ("NOTSET", "VALID"):
        raise ctx.fail(f"auto_pad '{auto_pad}' is not supported")
    if auto_pad == "VALID":
        pads = [0] * (2 * spatial)
    begins, ends = pads[:spatial], pads[spatial:]
    if begins == ends:
        conv.padding = tuple(begins)
        return Converted(conv, [0])
    return Converted(PaddedConv(conv, pads), [0])

"""Conv and ConvTranspose (opset 1, 11, 22): 1-D/2-D/3-D, groups, dilations, strides, pads."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dmbp_onnx.twin.ops.common import same_pads, torch_pad_order
from dmbp_onnx.twin.registry import Converted, NodeContext, converter, module_with_weights

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
    conv = module_with_weights(
        _CONV_CLASSES[spatial],
        {"weight": weight, "bias": bias},
        in_channels=weight.shape[1] * group,
        out_channels=weight.shape[0],
        kernel_size=kernel,
        stride=strides,
        dilation=dilations,
        groups=group,
        bias=bias is not None,
        padding=0,
    )
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


_CONV_T_CLASSES = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


class CroppedConvTranspose(nn.Module):
    """A pad-free transposed conv, then ONNX's crop (pads) / extension (output_padding), then bias.

    Parameters
    ----------
    conv : nn.ConvTranspose1d/2d/3d
        Without bias and padding.
    bias : torch.Tensor or None
        Added after cropping, so extended positions get the bias as ONNX gives them.
    pads : list of int or None
        ONNX ``[begins..., ends...]``; None when derived at run time from ``output_shape``
        or ``auto_pad`` SAME_*.
    output_padding : list of int
        Extra positions at the end of each axis.
    output_shape : list of int or None
        Requested spatial output size (None: ``input * stride`` under SAME_*).
    upper : bool
        Where an odd total padding puts its larger half: the end (SAME_UPPER) or the start.
    """

    def __init__(self, conv, bias, pads, output_padding, output_shape, upper) -> None:
        super().__init__()
        self.conv = conv
        if bias is not None:
            self.register_buffer("bias", bias.clone())
        else:
            self.bias = None
        self.pads, self.output_padding, self.output_shape, self.upper = pads, output_padding, output_shape, upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n = len(self.output_padding)
        full = list(y.shape[2:])
        if self.pads is not None:
            begins, ends = self.pads[:n], self.pads[n:]
        else:
            sizes = list(x.shape[2:])
            target = self.output_shape or [s * st for s, st in zip(sizes, self.conv.stride)]
            begins, ends = [], []
            for i in range(n):
                total = full[i] + self.output_padding[i] - target[i]
                small, large = total // 2, total - total // 2
                begins.append(small if self.upper else large)
                ends.append(large if self.upper else small)
        ends = [e - p for e, p in zip(ends, self.output_padding)]
        y = F.pad(y, torch_pad_order([-b for b in begins] + [-e for e in ends]))
        if self.bias is not None:
            y = y + self.bias.reshape([1, -1] + [1] * n)
        return y

    def extra_repr(self) -> str:
        return (
            f"pads={self.pads}, output_padding={self.output_padding}, "
            f"output_shape={self.output_shape}, upper={self.upper}"
        )


@converter("ConvTranspose", versions=(1, 11, 22))
def convert_conv_transpose(ctx: NodeContext) -> Converted:
    """Convert ConvTranspose into ``nn.ConvTransposeNd`` (wrapped when pads are asymmetric,
    derived from ``output_shape``/``auto_pad``, or the output padding exceeds torch's limit)."""
    ctx.check_attributes(
        {"auto_pad", "dilations", "group", "kernel_shape", "output_padding", "output_shape", "pads", "strides"}
    )
    weight = ctx.constant_tensor(1)
    bias = ctx.constant_tensor(2) if ctx.has_input(2) else None
    spatial = weight.dim() - 2
    if spatial not in _CONV_T_CLASSES:
        raise ctx.fail(f"{spatial}-D transposed convolution is not supported (weight {tuple(weight.shape)})")
    kernel = list(ctx.attr("kernel_shape") or weight.shape[2:])
    if kernel != list(weight.shape[2:]):
        raise ctx.fail(f"kernel_shape {kernel} disagrees with weight shape {tuple(weight.shape)}")
    strides = [int(s) for s in ctx.attr("strides") or [1] * spatial]
    dilations = [int(d) for d in ctx.attr("dilations") or [1] * spatial]
    group = int(ctx.attr("group", 1))
    auto_pad = ctx.attr("auto_pad", "NOTSET")
    pads = [int(p) for p in ctx.attr("pads") or [0] * (2 * spatial)]
    output_padding = [int(p) for p in ctx.attr("output_padding") or [0] * spatial]
    output_shape = ctx.attr("output_shape")
    if output_shape is not None:
        output_shape = [int(s) for s in output_shape][-spatial:]
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise ctx.fail(f"auto_pad '{auto_pad}' is not supported")
    if auto_pad == "VALID":
        pads = [0] * (2 * spatial)
    derived = output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER")
    begins, ends = pads[:spatial], pads[spatial:]
    direct = (
        not derived
        and begins == ends
        and all(p < max(s, d) for p, s, d in zip(output_padding, strides, dilations))
    )
    conv = module_with_weights(
        _CONV_T_CLASSES[spatial],
        {"weight": weight, "bias": bias if direct else None},
        in_channels=weight.shape[0],
        out_channels=weight.shape[1] * group,
        kernel_size=kernel,
        stride=strides,
        padding=tuple(begins) if direct else 0,
        output_padding=tuple(output_padding) if direct else 0,
        groups=group,
        bias=direct and bias is not None,
        dilation=dilations,
    )
    if direct:
        return Converted(conv, [0])
    module = CroppedConvTranspose(
        conv,
        bias,
        None if derived else pads,
        output_padding,
        output_shape,
        upper=auto_pad == "SAME_UPPER",
    )
    return Converted(module, [0])

"""Random piecewise-linear torch architectures, as data, and the module each one builds.

An :class:`Arch` is a plain frozen description (its ``repr`` is valid Python given
``from fuzz.architectures import *``), so a failing example is reproduced from
its printed form alone. :func:`architectures` is the hypothesis strategy;
:func:`build` turns a description into an ``eval()`` module with seeded weights
and random BatchNorm statistics; :func:`sample_input` gives its seeded input.

Covered: Conv1d/2d (strides, symmetric pads, asymmetric pads through
``nn.ZeroPad2d``/``nn.ConstantPad1d``/``F.pad``, dilations, groups incl.
depthwise, bias on/off), ConvTranspose1d/2d, BatchNorm (eval), ReLU, LeakyReLU,
ReLU6, PReLU (shared or per channel), Hardtanh, MaxPool (ceil_mode, padding,
dilation), AvgPool (ceil_mode, count_include_pad), residual adds, concats,
nearest/(bi)linear upsampling (align_corners both ways), AdaptiveAvgPool(1) or
Flatten + Linear heads, models taking channels-last (NHWC/NWC) input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch import nn

MAX_CHANNELS = 8


@dataclass(frozen=True)
class Act:
    """An activation: ``kind`` in relu/leaky/relu6/prelu/prelu_c/hardtanh; ``a``, ``b`` its parameters."""

    kind: str
    a: float = 0.0
    b: float = 0.0


@dataclass(frozen=True)
class Conv:
    """Conv (optionally BatchNorm, activation); ``pad`` in F.pad order (last dim first)."""

    out: int
    kernel: int
    stride: int
    pad: tuple[int, ...]
    pad_via: str  # "conv" (symmetric only), "module" or "functional"
    dilation: int
    groups: int
    bias: bool
    norm: bool
    act: Act | None


@dataclass(frozen=True)
class ConvT:
    """ConvTranspose with ``output_padding``, then an optional activation."""

    out: int
    kernel: int
    stride: int
    padding: int
    output_padding: int
    dilation: int
    groups: int
    bias: bool
    act: Act | None


@dataclass(frozen=True)
class Pool:
    """MaxPool (``dilation``) or AvgPool (``count_include_pad``), both with ``ceil_mode``."""

    kind: str
    kernel: int
    stride: int
    padding: int
    ceil_mode: bool
    dilation: int = 1
    count_include_pad: bool = True


@dataclass(frozen=True)
class Residual:
    """``act(x + bn(conv3x3(x)))``."""

    act: Act


@dataclass(frozen=True)
class Concat:
    """``cat([x, act(conv1x1(x))], channels)``."""

    out: int
    act: Act


@dataclass(frozen=True)
class Upsample:
    """Upsampling by ``scale`` (integer or not): nearest or (bi)linear."""

    mode: str
    scale: float
    align_corners: bool = False


Block = Union[Conv, ConvT, Pool, Residual, Concat, Upsample, Act]


@dataclass(frozen=True)
class Arch:
    """A whole model: input geometry, blocks, head.

    ``head``: "none" (the feature map, back in the input's layout), "gap"
    (AdaptiveAvgPool(1), Flatten, Linear), "flatten" (Flatten, Linear) or "mlp"
    (Flatten, Linear, ReLU, Linear).
    """

    dims: int
    nhwc: bool
    channels: int
    size: int
    batch: int
    blocks: tuple[Block, ...]
    head: str
    classes: int
    seed: int


# ----------------------------------------------------------------------------- strategy


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    if span < 0:
        return 0
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


@st.composite
def activations(draw) -> Act:
    """One activation with random parameters."""
    kind = draw(st.sampled_from(["relu", "leaky", "relu6", "prelu", "prelu_c", "hardtanh"]))
    if kind == "leaky":
        return Act(kind, a=draw(st.sampled_from([0.01, 0.1, 0.3])))
    if kind == "hardtanh":
        return Act(kind, a=draw(st.sampled_from([-1.0, -0.5, 0.0])), b=draw(st.sampled_from([0.5, 1.0, 2.0])))
    return Act(kind)


@st.composite
def _conv(draw, channels: int, sizes: tuple[int, ...]) -> tuple[Conv, int, tuple[int, ...]] | None:
    dims = len(sizes)
    kernel = draw(st.integers(1, 5))
    dilation = draw(st.sampled_from([1, 1, 2]))
    stride = draw(st.sampled_from([1, 1, 2, 3]))
    pad_via = draw(st.sampled_from(["conv", "module", "functional"]))
    if pad_via == "conv":
        pad = (draw(st.integers(0, 2)),) * (2 * dims)
    else:
        pad = tuple(draw(st.lists(st.integers(0, 3), min_size=2 * dims, max_size=2 * dims)))
    grouping = draw(st.sampled_from(["one", "one", "depthwise", "two"]))
    if grouping == "depthwise":
        groups, out = channels, channels * draw(st.integers(1, 2))
    elif grouping == "two" and channels % 2 == 0:
        groups, out = 2, 2 * draw(st.integers(1, MAX_CHANNELS // 2))
    else:
        groups, out = 1, draw(st.integers(1, MAX_CHANNELS))
    # F.pad order: the last spatial dim's pads come first.
    padded = [sizes[dims - 1 - i] + pad[2 * i] + pad[2 * i + 1] for i in range(dims)][::-1]
    new = tuple(_pool_out(n, kernel, stride, 0, dilation, False) for n in padded)
    if min(new) < 1 or out > MAX_CHANNELS:
        return None
    act = draw(st.none() | activations())
    conv = Conv(out, kernel, stride, pad, pad_via, dilation, groups, draw(st.booleans()), draw(st.booleans()), act)
    return conv, out, new


@st.composite
def _conv_t(draw, channels: int, sizes: tuple[int, ...]) -> tuple[ConvT, int, tuple[int, ...]] | None:
    kernel, stride = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    dilation = draw(st.sampled_from([1, 1, 2]))
    padding = draw(st.integers(0, dilation * (kernel - 1)))
    output_padding = draw(st.integers(0, stride - 1))  # onnxruntime rejects >= stride
    groups = 2 if channels % 2 == 0 and draw(st.booleans()) else 1
    out = groups * draw(st.integers(1, MAX_CHANNELS // groups))
    new = tuple((n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1 for n in sizes)
    if min(new) < 1 or max(new) > 40:
        return None
    act = draw(st.none() | activations())
    return ConvT(out, kernel, stride, padding, output_padding, dilation, groups, draw(st.booleans()), act), out, new


@st.composite
def _pool(draw, sizes: tuple[int, ...]) -> tuple[Pool, tuple[int, ...]] | None:
    kind = draw(st.sampled_from(["max", "avg"]))
    kernel = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 5))
    dilation = draw(st.sampled_from([1, 1, 2])) if kind == "max" else 1
    padding = draw(st.integers(0, kernel // 2))
    ceil = draw(st.booleans())
    new = tuple(_pool_out(n, kernel, stride, padding, dilation, ceil) for n in sizes)
    if min(new) < 1:
        return None
    return Pool(kind, kernel, stride, padding, ceil, dilation, draw(st.booleans())), new


@st.composite
def architectures(draw, max_blocks: int = 5) -> Arch:
    """A random :class:`Arch` whose every block fits the feature map it gets."""
    dims = draw(st.sampled_from([1, 2]))
    channels = draw(st.integers(1, 4))
    size = draw(st.integers(6, 16) if dims == 2 else st.integers(6, 32))
    arch_channels, sizes = channels, (size,) * dims
    blocks: list[Block] = []
    for _ in range(draw(st.integers(1, max_blocks))):
        kind = draw(st.sampled_from(["conv", "conv", "conv_t", "pool", "residual", "concat", "upsample", "act"]))
        made = None
        if kind == "conv":
            made = draw(_conv(channels, sizes))
        elif kind == "conv_t":
            made = draw(_conv_t(channels, sizes))
        elif kind == "pool":
            pool = draw(_pool(sizes))
            made = None if pool is None else (pool[0], channels, pool[1])
        elif kind == "residual":
            made = Residual(draw(activations())), channels, sizes
        elif kind == "concat" and channels < MAX_CHANNELS:
            extra = draw(st.integers(1, MAX_CHANNELS - channels))
            made = Concat(extra, draw(activations())), channels + extra, sizes
        elif kind == "upsample" and max(sizes) <= 16:
            mode = draw(st.sampled_from(["nearest", "linear"]))
            scale = draw(st.sampled_from([2, 3, 1.5]))
            align = mode == "linear" and draw(st.booleans())
            made = Upsample(mode, scale, align), channels, tuple(int(n * scale) for n in sizes)
        if made is None:
            made = draw(activations()), channels, sizes
        block, channels, sizes = made
        blocks.append(block)
    head = draw(st.sampled_from(["none", "gap", "flatten", "mlp"]))
    return Arch(
        dims, draw(st.booleans()), arch_channels, size, draw(st.integers(1, 2)), tuple(blocks), head,
        draw(st.integers(2, 5)), draw(st.integers(0, 2**16)),
    )


# ----------------------------------------------------------------------------- modules


def _activation(act: Act, channels: int) -> nn.Module:
    if act.kind == "relu":
        return nn.ReLU()
    if act.kind == "leaky":
        return nn.LeakyReLU(act.a)
    if act.kind == "relu6":
        return nn.ReLU6()
    if act.kind == "hardtanh":
        return nn.Hardtanh(act.a, act.b)
    prelu = nn.PReLU(channels if act.kind == "prelu_c" else 1)
    with torch.no_grad():
        prelu.weight.uniform_(-0.5, 0.5)
    return prelu


def _batchnorm(dims: int, channels: int) -> nn.Module:
    bn = (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(channels)
    with torch.no_grad():
        bn.running_mean.normal_(0, 0.3)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_(0, 0.3)
    return bn


class _Pad(nn.Module):
    """``F.pad`` with fixed zero pads (the functional spelling of asymmetric padding)."""

    def __init__(self, pad: tuple[int, ...]) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pad)


class _Residual(nn.Module):
    def __init__(self, dims: int, channels: int, act: Act) -> None:
        super().__init__()
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.conv, self.bn = conv(channels, channels, 3, padding=1), _batchnorm(dims, channels)
        self.act = _activation(act, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.bn(self.conv(x)))


class _Concat(nn.Module):
    def __init__(self, dims: int, channels: int, spec: Concat) -> None:
        super().__init__()
        self.conv = (nn.Conv1d if dims == 1 else nn.Conv2d)(channels, spec.out, 1)
        self.act = _activation(spec.act, spec.out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.act(self.conv(x))], dim=1)


class _Model(nn.Module):
    def __init__(self, arch: Arch, body: nn.Sequential, head: nn.Module | None) -> None:
        super().__init__()
        self.nhwc, self.dims = arch.nhwc, arch.dims
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nhwc:
            x = x.permute(0, 3, 1, 2) if self.dims == 2 else x.permute(0, 2, 1)
        x = self.body(x)
        if self.head is not None:
            return self.head(x)
        if self.nhwc:
            x = x.permute(0, 2, 3, 1) if self.dims == 2 else x.permute(0, 2, 1)
        return x


def _block(arch: Arch, block: Block, channels: int) -> tuple[list[nn.Module], int]:
    d = arch.dims
    conv_cls = nn.Conv1d if d == 1 else nn.Conv2d
    if isinstance(block, Act):
        return [_activation(block, channels)], channels
    if isinstance(block, Conv):
        layers: list[nn.Module] = []
        padding = 0
        if block.pad_via == "conv":
            padding = block.pad[0]
        elif block.pad_via == "module":
            layers.append(nn.ConstantPad1d(block.pad, 0.0) if d == 1 else nn.ZeroPad2d(block.pad))
        else:
            layers.append(_Pad(block.pad))
        layers.append(
            conv_cls(channels, block.out, block.kernel, block.stride, padding, block.dilation, block.groups, block.bias)
        )
        if block.norm:
            layers.append(_batchnorm(d, block.out))
        if block.act is not None:
            layers.append(_activation(block.act, block.out))
        return layers, block.out
    if isinstance(block, ConvT):
        cls = nn.ConvTranspose1d if d == 1 else nn.ConvTranspose2d
        layers = [cls(channels, block.out, block.kernel, block.stride, block.padding, block.output_padding,
                      block.groups, block.bias, block.dilation)]
        if block.act is not None:
            layers.append(_activation(block.act, block.out))
        return layers, block.out
    if isinstance(block, Pool):
        if block.kind == "max":
            cls = nn.MaxPool1d if d == 1 else nn.MaxPool2d
            return [cls(block.kernel, block.stride, block.padding, block.dilation, ceil_mode=block.ceil_mode)], channels
        cls = nn.AvgPool1d if d == 1 else nn.AvgPool2d
        return [cls(block.kernel, block.stride, block.padding, block.ceil_mode, block.count_include_pad)], channels
    if isinstance(block, Residual):
        return [_Residual(d, channels, block.act)], channels
    if isinstance(block, Concat):
        return [_Concat(d, channels, block)], channels + block.out
    mode = block.mode if block.mode == "nearest" else ("linear" if d == 1 else "bilinear")
    align = block.align_corners if block.mode == "linear" else None
    return [nn.Upsample(scale_factor=block.scale, mode=mode, align_corners=align)], channels


def build(arch: Arch) -> nn.Module:
    """The ``eval()`` module ``arch`` describes, weights seeded by ``arch.seed``."""
    torch.manual_seed(arch.seed)
    layers: list[nn.Module] = []
    channels = arch.channels
    for block in arch.blocks:
        made, channels = _block(arch, block, channels)
        layers.extend(made)
    body = nn.Sequential(*layers).eval()
    head = None
    if arch.head != "none":
        with torch.no_grad():
            probe = body(torch.zeros(1, arch.channels, *([arch.size] * arch.dims)))
        if arch.head == "gap":
            pool = nn.AdaptiveAvgPool1d(1) if arch.dims == 1 else nn.AdaptiveAvgPool2d(1)
            head = nn.Sequential(pool, nn.Flatten(), nn.Linear(channels, arch.classes))
        elif arch.head == "flatten":
            head = nn.Sequential(nn.Flatten(), nn.Linear(probe[0].numel(), arch.classes))
        else:
            head = nn.Sequential(
                nn.Flatten(), nn.Linear(probe[0].numel(), 6), nn.ReLU(), nn.Linear(6, arch.classes)
            )
    return _Model(arch, body, head).eval()


def sample_input(arch: Arch) -> torch.Tensor:
    """Seeded standard-normal input in the model's own layout."""
    gen = torch.Generator().manual_seed(arch.seed + 1)
    spatial = [arch.size] * arch.dims
    shape = [arch.batch, *spatial, arch.channels] if arch.nhwc else [arch.batch, arch.channels, *spatial]
    return torch.randn(shape, generator=gen)

"""Mask sites: one gate per conv filter and per hidden fully-connected unit.

A :class:`MaskSite` is the identity in the forward pass. Attribution methods
attach a *backward hook* to it (see :meth:`MaskSite.hooked`) that rescales the
gradient flowing back through each filter; with no hook attached the site
returns its input object unchanged, so the twin's outputs and gradients are
bit-identical to a twin without sites.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

SiteHook = Callable[["MaskSite", torch.Tensor], torch.Tensor]


class MaskSite(nn.Module):
    """Identity gate after one conv / hidden linear layer.

    Parameters
    ----------
    onnx_node : str
        Name of the ONNX node whose output this site gates.
    channels : int
        Number of filters (output channels or units).
    channel_axis : int
        Axis of the gated tensor that indexes the filters (1 for Conv/Gemm, -1 for MatMul).
    """

    def __init__(self, onnx_node: str, channels: int, channel_axis: int) -> None:
        super().__init__()
        self.onnx_node = onnx_node
        self.channels = int(channels)
        self.channel_axis = int(channel_axis)
        self.hook: SiteHook | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` itself, or what the attached hook makes of it."""
        if self.hook is None:
            return x
        return self.hook(self, x)

    def broadcast_shape(self, ndim: int, batch: int) -> list[int]:
        """Shape that broadcasts a ``(batch, channels)`` mask over an ``ndim`` activation."""
        shape = [1] * ndim
        shape[0] = batch
        shape[self.channel_axis] = self.channels
        return shape

    def extra_repr(self) -> str:
        return f"onnx_node={self.onnx_node!r}, channels={self.channels}, axis={self.channel_axis}"


@dataclass(frozen=True)
class MaskSiteInfo:
    """Description of one mask site.

    Attributes
    ----------
    name : str
        Submodule name of the site inside the twin's GraphModule.
    onnx_node : str
        ONNX node whose output is gated.
    op : str
        ONNX op type of that node (``Conv``, ``Gemm``, ``MatMul``, ``ConvTranspose``).
    channels : int
        Number of filters / units gated.
    channel_axis : int
        Axis of the filters in the gated tensor.
    """

    name: str
    onnx_node: str
    op: str
    channels: int
    channel_axis: int


def iter_sites(module: nn.Module) -> Iterator[tuple[str, MaskSite]]:
    """Yield ``(name, site)`` for every :class:`MaskSite` of ``module`` in graph order."""
    for name, sub in module.named_modules():
        if isinstance(sub, MaskSite):
            yield name, sub


@contextlib.contextmanager
def hooked(module: nn.Module, hook: SiteHook) -> Iterator[list[MaskSite]]:
    """Attach ``hook`` to every mask site of ``module`` for the duration of the block.

    The hooks are always removed on exit, also when the block raises.
    """
    sites = [site for _, site in iter_sites(module)]
    previous = [site.hook for site in sites]
    for site in sites:
        site.hook = hook
    try:
        yield sites
    finally:
        for site, old in zip(sites, previous):
            site.hook = old

"""Shared pieces for op converters: padding arithmetic and constant-input wrappers."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn


class Lambda(nn.Module):
    """A module around a pure function of the runtime inputs, with constants as buffers.

    Parameters
    ----------
    fn : callable
        ``fn(*inputs)`` with the node's inputs in ONNX order (runtime and constant ones merged).
    n_inputs : int
        Number of inputs of the ONNX node (present or not).
    constants : dict of int to array
        Constant inputs by position; absent positions are runtime inputs, in order.
    description : str
        Shown by ``repr`` (the op and its attributes).
    """

    def __init__(
        self,
        fn: Callable[..., torch.Tensor],
        n_inputs: int = 1,
        constants: dict[int, np.ndarray] | None = None,
        description: str = "",
    ) -> None:
        super().__init__()
        self.fn = fn
        self.n_inputs = n_inputs
        self.const_positions = sorted((constants or {}).keys())
        for pos, value in (constants or {}).items():
            self.register_buffer(f"const_{pos}", torch.from_numpy(np.array(value, copy=True)))
        self.description = description

    def forward(self, *runtime: torch.Tensor) -> torch.Tensor:
        args: list[torch.Tensor] = []
        it = iter(runtime)
        for pos in range(self.n_inputs):
            if pos in self.const_positions:
                args.append(getattr(self, f"const_{pos}"))
            else:
                args.append(next(it))
        return self.fn(*args)

    def extra_repr(self) -> str:
        return self.description


def same_pads(
    in_sizes: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    dilations: Sequence[int],
    upper: bool,
) -> list[int]:
    """ONNX ``auto_pad`` SAME_UPPER/SAME_LOWER pads as ``[b1, b2, ..., e1, e2, ...]``."""
    begins, ends = [], []
    for size, k, s, d in zip(in_sizes, kernel, strides, dilations):
        out = math.ceil(size / s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begins.append(small if upper else large)
        ends.append(large if upper else small)
    return begins + ends


def torch_pad_order(onnx_pads: Sequence[int]) -> list[int]:
    """Convert ONNX ``[b1, b2, ..., e1, e2, ...]`` to ``F.pad``'s last-dim-first pairs."""
    n = len(onnx_pads) // 2
    order: list[int] = []
    for axis in reversed(range(n)):
        order += [int(onnx_pads[axis]), int(onnx_pads[axis + n])]
    return order

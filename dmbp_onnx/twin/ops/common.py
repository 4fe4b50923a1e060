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


class ConstantsOp(nn.Module):
    """Base of small op modules: constant inputs are buffers, the rest arrive at run time.

    Subclasses implement :meth:`compute` taking every ONNX input in order
    (``None`` for an omitted optional input). Build one with :func:`bind`.
    """

    n_inputs: int = 0
    const_positions: tuple[int, ...] = ()
    absent_positions: tuple[int, ...] = ()

    def forward(self, *runtime: torch.Tensor):
        args: list[torch.Tensor | None] = []
        it = iter(runtime)
        for pos in range(self.n_inputs):
            if pos in self.absent_positions:
                args.append(None)
            elif pos in self.const_positions:
                args.append(getattr(self, f"const_{pos}"))
            else:
                args.append(next(it))
        return self.compute(*args)

    def compute(self, *args: torch.Tensor | None):
        """The op on all its inputs (constants included)."""
        raise NotImplementedError


def bind(ctx, module: ConstantsOp, n_inputs: int | None = None) -> "Converted":
    """Give ``module`` the node's constant inputs as buffers and list its runtime inputs.

    Parameters
    ----------
    ctx : NodeContext
        The node being converted.
    module : ConstantsOp
        A fresh module for this node.
    n_inputs : int, optional
        Inputs passed to ``compute`` (default: the node's input count).
    """
    from dmbp_onnx.twin.registry import Converted

    count = len(ctx.node.inputs) if n_inputs is None else n_inputs
    consts, absent, runtime = [], [], []
    for pos in range(count):
        if not ctx.has_input(pos):
            absent.append(pos)
        elif ctx.is_constant(pos):
            consts.append(pos)
            module.register_buffer(f"const_{pos}", ctx.constant_tensor(pos))
        else:
            runtime.append(pos)
    module.n_inputs = count
    module.const_positions = tuple(consts)
    module.absent_positions = tuple(absent)
    return Converted(module, runtime)


def frozen(module: nn.Module) -> nn.Module:
    """``module`` with every parameter set to ``requires_grad=False``."""
    module.requires_grad_(False)
    return module


def int_list(value) -> list[int]:
    """A constant or runtime integer tensor (or sequence) as a Python list of ints."""
    if isinstance(value, torch.Tensor):
        return [int(v) for v in value.reshape(-1).tolist()]
    return [int(v) for v in np.asarray(value).reshape(-1).tolist()]


def onnx_dtype_to_torch(onnx_type: int) -> torch.dtype:
    """The torch dtype of an ONNX ``TensorProto`` data type."""
    from onnx import helper

    return numpy_to_torch_dtype(helper.tensor_dtype_to_np_dtype(onnx_type))


def numpy_to_torch_dtype(dtype) -> torch.dtype:
    """The torch dtype of a numpy dtype."""
    return torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype

"""Shared pieces for op converters: padding arithmetic, constant-input binding, dtype mapping."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # the registry imports the converters, so the class is imported where it is built
    from dmbp_onnx.twin.registry import Converted


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
    A constant input at a position listed in ``static_inputs`` (shapes, axes,
    pads, scales) reaches ``compute`` as a Python list, read once at build time,
    so running the twin on an accelerator never syncs to read it back.
    """

    static_inputs: tuple[int, ...] = ()
    n_inputs: int = 0
    const_positions: tuple[int, ...] = ()
    absent_positions: tuple[int, ...] = ()
    static_values: dict[int, list] = {}

    def forward(self, *runtime: torch.Tensor):
        args: list[torch.Tensor | None] = []
        it = iter(runtime)
        for pos in range(self.n_inputs):
            if pos in self.absent_positions:
                args.append(None)
            elif pos in self.static_values:
                args.append(self.static_values[pos])
            elif pos in self.const_positions:
                args.append(getattr(self, f"const_{pos}"))
            else:
                args.append(next(it))
        return self.compute(*args)

    def compute(self, *args: torch.Tensor | None):
        """The op on all its inputs (constants included)."""
        raise NotImplementedError


def bind(ctx, module: ConstantsOp, n_inputs: int | None = None) -> Converted:
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
    static: dict[int, list] = {}
    for pos in range(count):
        if not ctx.has_input(pos):
            absent.append(pos)
        elif ctx.is_constant(pos) and pos in module.static_inputs:
            static[pos] = np.asarray(ctx.constant(pos)).reshape(-1).tolist()
        elif ctx.is_constant(pos):
            consts.append(pos)
            module.register_buffer(f"const_{pos}", ctx.constant_tensor(pos))
        else:
            runtime.append(pos)
    module.n_inputs = count
    module.const_positions = tuple(consts)
    module.absent_positions = tuple(absent)
    module.static_values = static
    return Converted(module, runtime)


def frozen(module: nn.Module) -> nn.Module:
    """``module`` with every parameter set to ``requires_grad=False``."""
    module.requires_grad_(False)
    return module


def int_list(value) -> list[int]:
    """A runtime integer tensor or a static list as a Python list of ints."""
    if isinstance(value, torch.Tensor):
        value = value.reshape(-1).tolist()
    return [int(v) for v in value]


def float_list(value) -> list[float]:
    """A runtime float tensor or a static list as a Python list of floats."""
    if isinstance(value, torch.Tensor):
        value = value.reshape(-1).tolist()
    return [float(v) for v in value]


def onnx_dtype_to_torch(onnx_type: int) -> torch.dtype:
    """The torch dtype of an ONNX ``TensorProto`` data type."""
    from onnx import helper

    return numpy_to_torch_dtype(helper.tensor_dtype_to_np_dtype(onnx_type))


def numpy_to_torch_dtype(dtype) -> torch.dtype:
    """The torch dtype of a numpy dtype."""
    return torch.from_numpy(np.zeros(0, dtype=np.dtype(dtype))).dtype


NO_TORCH_ARITHMETIC = frozenset({"uint16", "uint32", "uint64"})
"""Integer dtypes torch stores but has no add/sub/div/maximum/minimum/amax kernels for."""

NO_TORCH_DTYPE = frozenset({"bfloat16", "complex64", "complex128", "str", "object"})
"""Declared dtypes the twin never computes in (numpy or torch lacks them, or they are not numbers)."""


def dtype_name(dtype) -> str | None:
    """Name of an onnx-graphsurgeon tensor dtype (None when unknown).

    onnx-graphsurgeon keeps the ONNX enum (an int) for types numpy lacks (bfloat16,
    float8); those are named as ONNX names them, lower-cased. Also names a Cast's ``to``.
    """
    from onnx import helper

    if dtype is None:
        return None
    if isinstance(dtype, int):
        try:
            return helper.tensor_dtype_to_string(dtype).removeprefix("TensorProto.").lower()
        except (KeyError, ValueError):
            return f"onnx type {dtype}"
    name = np.dtype(dtype).name
    return "str" if np.dtype(dtype).kind in "OSU" else name


def refuse_input_dtypes(ctx, refused: frozenset[str]) -> None:
    """Raise naming the first input whose declared dtype is in ``refused`` or numpy lacks.

    Only dtypes known at build time are checked (graph inputs, initializers, inferred values).
    """
    for index, tensor in enumerate(ctx.node.inputs):
        name = dtype_name(tensor.dtype) if tensor.name else None
        if name is not None and (name in refused or isinstance(tensor.dtype, int)):
            raise ctx.fail(f"input {index} ('{tensor.name}') has dtype {name}, which is not supported")

"""Pad (opset 2, 11, 13, 18, 19, 21, 23): constant, reflect and edge modes, negative pads crop.

Pads come from the attribute (opset 2) or a constant or runtime int64 input (11+),
restricted to ``axes`` from opset 18. Reflect and edge padding gather indices
per axis, so they work on any axis of any rank.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dmbp_onnx.twin.ops.common import ConstantsOp, bind, int_list, torch_pad_order
from dmbp_onnx.twin.registry import Converted, NodeContext, converter


def _source_index(size: int, begin: int, end: int, mode: str, device) -> torch.Tensor:
    positions = torch.arange(-begin, size + end, device=device)
    if mode == "edge":
        return positions.clamp(0, size - 1)
    if size == 1:
        return torch.zeros_like(positions)
    period = 2 * (size - 1)
    folded = positions.abs() % period
    return torch.where(folded > size - 1, period - folded, folded)


class PadOp(ConstantsOp):
    """ONNX Pad on every axis or on ``axes``; ``pads`` is ``[begins..., ends...]``."""

    static_inputs = (1, 3)

    def __init__(self, mode: str, pads: list[int] | None = None, value: float = 0.0) -> None:
        super().__init__()
        self.mode, self.pads, self.value = mode, pads, value

    def compute(self, x, pads=None, constant_value=None, axes=None):
        flat = self.pads if self.pads is not None else int_list(pads)
        rank = x.dim()
        chosen = int_list(axes) if axes is not None else list(range(rank))
        chosen = [a + rank if a < 0 else a for a in chosen]
        n = len(chosen)
        full = [0] * (2 * rank)
        for k, axis in enumerate(chosen):
            full[axis], full[axis + rank] = flat[k], flat[k + n]
        if self.mode == "constant":
            value = self.value if constant_value is None else constant_value.reshape(()).item()
            return F.pad(x, torch_pad_order(full), value=value)
        for axis in range(rank):
            begin, end = full[axis], full[axis + rank]
            if begin or end:
                index = _source_index(x.shape[axis], begin, end, self.mode, x.device)
                x = torch.index_select(x, axis, index)
        return x

    def extra_repr(self) -> str:
        return f"mode={self.mode}, pads={self.pads}, value={self.value}"


@converter("Pad", versions=(2, 11, 13, 18, 19, 21, 23))
def convert_pad(ctx: NodeContext) -> Converted:
    """Convert Pad (``wrap`` mode is refused)."""
    mode = ctx.attr("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.fail(f"mode '{mode}' is not supported")
    if ctx.since_version == 2:
        ctx.check_attributes({"mode", "pads", "value"})
        pads = [int(p) for p in ctx.attr("pads")]
        return bind(ctx, PadOp(mode, pads, float(ctx.attr("value", 0.0))), n_inputs=1)
    ctx.check_attributes({"mode"})
    return bind(ctx, PadOp(mode), n_inputs=4 if ctx.since_version >= 18 else 3)

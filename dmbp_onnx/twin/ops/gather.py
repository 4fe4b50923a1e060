"""GatherND (any ``batch_dims``), as the dynamo exporter emits for 1-D linear upsampling."""

from __future__ import annotations

import math

import torch

from dmbp_onnx.twin.ops.common import ConstantsOp, bind
from dmbp_onnx.twin.registry import Converted, NodeContext, converter


class GatherND(ConstantsOp):
    """ONNX GatherND: slices of ``data`` addressed by the last axis of ``indices``.

    With ``b = batch_dims``, ``data`` of shape ``B + D + R`` (``len(D) = k``) and
    ``indices`` of shape ``B + M + [k]``, the output has shape ``B + M + R`` and
    ``out[b, m] = data[b, indices[b, m]]``; negative indices count from the end.
    Implemented as one advanced-indexing gather, so gradients reach ``data``.
    """

    def __init__(self, batch_dims: int) -> None:
        super().__init__()
        self.batch_dims = batch_dims

    def compute(self, data, indices):
        b, k = self.batch_dims, int(indices.shape[-1])
        batch, addressed = list(data.shape[:b]), list(data.shape[b : b + k])
        rest, middle = list(data.shape[b + k :]), list(indices.shape[b:-1])
        sizes = torch.tensor(addressed, dtype=torch.int64, device=indices.device)
        idx = indices.to(torch.int64)
        idx = torch.where(idx < 0, idx + sizes, idx)
        strides = [math.prod(addressed[j + 1 :]) for j in range(k)]
        linear = (idx * torch.tensor(strides, dtype=torch.int64, device=idx.device)).sum(-1)
        n_batch = math.prod(batch)
        flat = data.reshape([n_batch, math.prod(addressed)] + rest)
        rows = torch.arange(n_batch, device=data.device).reshape(-1, 1)
        out = flat[rows, linear.reshape(n_batch, -1)]
        return out.reshape(batch + middle + rest)

    def extra_repr(self) -> str:
        return f"batch_dims={self.batch_dims}"


@converter("GatherND", versions=(11, 12, 13))
def convert_gather_nd(ctx: NodeContext) -> Converted:
    """Convert GatherND (``batch_dims`` from revision 12)."""
    ctx.check_attributes({"batch_dims"} if ctx.since_version >= 12 else set())
    return bind(ctx, GatherND(int(ctx.attr("batch_dims", 0))))

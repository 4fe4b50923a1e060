"""Activations: Relu (and, by the ops helper, the rest of the family)."""

from __future__ import annotations

from torch import nn

from dmbp_onnx.twin.registry import Converted, NodeContext, converter


@converter("Relu", versions=(1, 6, 13, 14))
def convert_relu(ctx: NodeContext) -> Converted:
    """Convert Relu into ``nn.ReLU`` (a fresh module per node, never shared)."""
    ctx.check_attributes({"consumed_inputs"} if ctx.since_version == 1 else set())
    return Converted(nn.ReLU(), [0])

"""BatchNormalization in inference form (opset 7, 9, 14, 15) as ``nn.BatchNormNd`` in eval mode."""

from __future__ import annotations

import torch
from torch import nn

from dmbp_onnx.twin.ops.common import ConstantsOp, bind, frozen
from dmbp_onnx.twin.registry import Converted, NodeContext, converter

_BN = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


class BatchNormAnyRank(ConstantsOp):
    """Inference batch norm over axis 1 for an input of any rank."""

    def __init__(self, epsilon: float) -> None:
        super().__init__()
        self.epsilon = epsilon

    def compute(self, x, scale, bias, mean, var):
        shape = [1, -1] + [1] * (x.dim() - 2)
        inv = torch.rsqrt(var.reshape(shape) + self.epsilon)
        return (x - mean.reshape(shape)) * inv * scale.reshape(shape) + bias.reshape(shape)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}"


@converter("BatchNormalization", versions=(7, 9, 14, 15))
def convert_batchnorm(ctx: NodeContext) -> Converted:
    """Convert inference BatchNormalization; training mode or extra outputs are refused."""
    allowed = {"epsilon", "momentum"}
    if ctx.since_version == 7:
        allowed.add("spatial")
    if ctx.since_version >= 14:
        allowed.add("training_mode")
    ctx.check_attributes(allowed)
    ctx.attr("momentum")
    if int(ctx.attr("spatial", 1)) != 1:
        raise ctx.fail("spatial=0 is not supported")
    if int(ctx.attr("training_mode", 0)) != 0:
        raise ctx.fail("training_mode=1 is not supported")
    if any(t.name for t in ctx.node.outputs[1:]):
        raise ctx.fail("the training outputs (running mean/var) are not supported")
    epsilon = float(ctx.attr("epsilon", 1e-5))
    for i in range(1, 5):
        if not ctx.is_constant(i):
            return bind(ctx, BatchNormAnyRank(epsilon))
    scale, bias, mean, var = (ctx.constant_tensor(i) for i in range(1, 5))
    shape = ctx.node.inputs[0].shape
    rank = len(shape) if shape is not None else None
    if rank not in _BN or scale.dtype != torch.float32 or scale.dim() != 1:
        return bind(ctx, BatchNormAnyRank(epsilon))
    bn = _BN[rank](scale.shape[0], eps=epsilon)
    with torch.no_grad():
        bn.weight.copy_(scale)
        bn.bias.copy_(bias)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
    bn.eval()
    return Converted(frozen(bn), [0])

"""Hand-written rules: ReLU gates, convolutions, linear layers, 2-D max-pooling, reshapes, tuple items.

The convolution's transpose is PyTorch's own ``convolution_backward`` (input gradient
only), so the plain gradient is bit-identical to autograd's. ReLU gates are kept as 0/1
bytes (``uint8``: a quarter of an fp32 gate's memory and the same bits in the products; an
in-place product with them is faster than with booleans or ``torch.where``, and costs about
1 ms more than an fp32 gate per 3 M elements on one CPU thread, noise next to the convolutions),
max-pool selections as ``int32`` indices (half of PyTorch's
``int64``; repeated selections of overlapping windows are summed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import torch
import torch.nn.functional as F
from torch import fx, nn

from dmbp_onnx.methods.masked.rule import Contribution, NativeRule, Rule
from dmbp_onnx.twin.ops.shape import Flatten, Reshape

if TYPE_CHECKING:
    from dmbp_onnx.methods.masked.mapping import MaskedMapping

_CONV_FN = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}


class ReluRule(NativeRule):
    """ReLU: the recorded gate ``[output > 0]`` multiplies both passes."""

    modules = (nn.ReLU,)

    def __init__(self, gate: torch.Tensor) -> None:
        self.gate = gate

    @classmethod
    def record(
        cls, mapping: MaskedMapping, node: fx.Node, sub: nn.Module, h: Optional[torch.Tensor], args: tuple
    ) -> tuple[Rule, Any]:
        """Keep the gate as 0/1 bytes in the passes' layout (none after a node whose passes already
        zero what the gate would: :meth:`Rule.zero_unless_positive`)."""
        out = sub(h)
        source = mapping.feeding_rule(node)
        if source is not None and source.zero_unless_positive():
            return PassRule(), out
        gate = torch.empty_like(out, dtype=torch.uint8, memory_format=mapping.layout(out))
        return cls(torch.gt(out, 0, out=gate)), out

    def backward(self, mapping: MaskedMapping, g: torch.Tensor, owned: bool) -> torch.Tensor:
        """``g`` times the gate."""
        return _gated(g, self.gate, owned)

    def forward(self, mapping: MaskedMapping, t: torch.Tensor, owned: bool) -> torch.Tensor:
        """``t`` times the gate."""
        return _gated(t, self.gate, owned)


class PassRule(Rule):
    """A ReLU after a node whose passes are zero wherever its input is not positive: the identity.

    Both passes then give the gated result's bits (a product with the gate would only multiply zeros by 0);
    the backward signal at a mask site in between is not gated, which changes its products with the
    adjoint activation, zero there, only in the sign of a zero.
    """

    def transpose(
        self, mapping: MaskedMapping, node: fx.Node, g: Any, owned: bool, masks: dict[str, torch.Tensor]
    ) -> list[Contribution]:
        """``g`` itself, owned as it came."""
        return [(node.args[0], g, owned)]

    def tangent(
        self,
        mapping: MaskedMapping,
        node: fx.Node,
        tangents: dict[fx.Node, Any],
        fresh: set[fx.Node],
        masks: dict[str, torch.Tensor],
        at_site,
    ) -> tuple[Any, bool]:
        """The input's tangent itself, owned as it came."""
        return tangents[node.args[0]], node.args[0] in fresh


class ConvRule(NativeRule):
    """Convolution with zero padding: transposed by ``convolution_backward``, bias dropped forward."""

    modules = tuple(_CONV_FN)

    def __init__(self, sub: nn.Module, shape: torch.Size) -> None:
        self.sub, self.shape = sub, shape

    @classmethod
    def record(
        cls, mapping: MaskedMapping, node: fx.Node, sub: nn.Module, h: Optional[torch.Tensor], args: tuple
    ) -> Optional[tuple[Rule, Any]]:
        """Keep the input's shape (explicit zero padding, one argument only)."""
        if sub.padding_mode != "zeros" or isinstance(sub.padding, str) or len(args) != 1:
            return None
        return cls(sub, h.shape), sub(h)

    def backward(self, mapping: MaskedMapping, g: torch.Tensor, owned: bool) -> torch.Tensor:
        """The input gradient of the convolution for output gradient ``g``."""
        return self._transposed(mapping, g, mapping.weight(self.sub))

    def forward(self, mapping: MaskedMapping, t: torch.Tensor, owned: bool) -> torch.Tensor:
        """The convolution of ``t`` without bias."""
        return self._convolved(t.contiguous(memory_format=mapping.layout(t)), mapping.weight(self.sub))

    def _transposed(self, mapping: MaskedMapping, g: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The input gradient of the convolution with ``weight`` for output gradient ``g``."""
        sub, dims = self.sub, len(self.shape) - 2
        layout = mapping.layout(g)
        g = g.contiguous(memory_format=layout)
        # only its shape and layout are read (an expanded one would be copied)
        shaped = torch.empty(self.shape, dtype=g.dtype, device=g.device, memory_format=layout)
        return torch.ops.aten.convolution_backward(
            g, shaped, weight, None, sub.stride, sub.padding, sub.dilation, False, [0] * dims, sub.groups,
            [True, False, False],
        )[0]  # fmt: skip

    def _convolved(self, t: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The bias-free convolution of ``t`` with ``weight``."""
        sub = self.sub
        return _CONV_FN[type(sub)](t, weight, None, sub.stride, sub.padding, sub.dilation, sub.groups)


class LinearRule(NativeRule):
    """Linear layer: multiplied by the weight (transposed backward), bias dropped forward."""

    modules = (nn.Linear,)

    def __init__(self, sub: nn.Module) -> None:
        self.sub = sub

    @classmethod
    def record(
        cls, mapping: MaskedMapping, node: fx.Node, sub: nn.Module, h: Optional[torch.Tensor], args: tuple
    ) -> Optional[tuple[Rule, Any]]:
        """Keep nothing but the layer (one argument only)."""
        if len(args) != 1:
            return None
        return cls(sub), sub(h)

    def backward(self, mapping: MaskedMapping, g: torch.Tensor, owned: bool) -> torch.Tensor:
        """``g @ W``."""
        weight = mapping.weight(self.sub)
        return g.mm(weight) if g.dim() == 2 else g.matmul(weight)

    def forward(self, mapping: MaskedMapping, t: torch.Tensor, owned: bool) -> torch.Tensor:
        """``t @ W.T``."""
        return F.linear(t, mapping.weight(self.sub))


class MaxPoolRule(NativeRule):
    """2-D max-pooling: the recorded selections gather forward and scatter-add backward."""

    modules = (nn.MaxPool2d,)

    def __init__(self, indices: torch.Tensor, shape: torch.Size) -> None:
        self.indices, self.shape = indices, shape

    @classmethod
    def record(
        cls, mapping: MaskedMapping, node: fx.Node, sub: nn.Module, h: Optional[torch.Tensor], args: tuple
    ) -> Optional[tuple[Rule, Any]]:
        """Keep the selected positions (4-D input, one argument, no returned indices)."""
        if sub.return_indices or h.dim() != 4 or len(args) != 1:
            return None
        out, idx = F.max_pool2d(h, sub.kernel_size, sub.stride, sub.padding, sub.dilation, sub.ceil_mode, True)
        return cls(idx.to(torch.int32, memory_format=mapping.layout(idx)), h.shape), out

    def backward(self, mapping: MaskedMapping, g: torch.Tensor, owned: bool) -> torch.Tensor:
        """Scatter-add ``g`` to the selected positions (overlapping windows may select one repeatedly)."""
        last = mapping.channels_last
        flat_g, dim = _spatial(g.contiguous(memory_format=mapping.layout(g)), last)
        flat_i, _ = _spatial(self.indices, last)
        size = list(flat_i.shape)
        size[dim] = self.shape[2] * self.shape[3]
        flat = g.new_zeros(size).scatter_add_(dim, flat_i, flat_g)
        return _unspatial(flat, self.shape, last)

    def forward(self, mapping: MaskedMapping, t: torch.Tensor, owned: bool) -> torch.Tensor:
        """Gather ``t`` at the selected positions."""
        idx, last = self.indices, mapping.channels_last
        flat_t, dim = _spatial(t.contiguous(memory_format=mapping.layout(t)), last)
        return _unspatial(flat_t.gather(dim, _spatial(idx, last)[0]), idx.shape, last)


class ReshapeRule(Rule):
    """Flatten / Reshape keeping every element: the transpose reshapes back."""

    modules = (Flatten, Reshape)

    def __init__(self, shape: torch.Size) -> None:
        self.shape = shape

    @classmethod
    def record(
        cls, mapping: MaskedMapping, node: fx.Node, sub: nn.Module, h: Optional[torch.Tensor], args: tuple
    ) -> Optional[tuple[Rule, Any]]:
        """Keep the input's shape (None when the element count changes)."""
        out = sub(*args)
        if out.numel() != h.numel():
            return None
        return cls(h.shape), out

    def transpose(
        self, mapping: MaskedMapping, node: fx.Node, g: Any, owned: bool, masks: dict[str, torch.Tensor]
    ) -> list[Contribution]:
        """``g`` reshaped to the input's shape (a view)."""
        return [(node.args[0] if node.args else None, g.reshape(self.shape), False)]


class GetItemRule(Rule):
    """``operator.getitem`` on a node with several outputs: the signal goes to one slot.

    Parameters
    ----------
    source : torch.fx.Node
        The node whose outputs are indexed.
    index : int
        The output taken.
    """

    def __init__(self, source: fx.Node, index: int) -> None:
        self.source, self.index = source, index

    def transpose(
        self, mapping: MaskedMapping, node: fx.Node, g: Any, owned: bool, masks: dict[str, torch.Tensor]
    ) -> list[Contribution]:
        """``(index, g)`` for the source's slot."""
        return [(self.source, (self.index, g), False)]


def _gated(t: torch.Tensor, gate: torch.Tensor, owned: bool) -> torch.Tensor:
    """``t`` times the 0/1 bytes ``gate``, in ``t``'s dtype (in place when ``owned``; else the gate is
    widened and multiplied in place, 5x faster than ``t * gate`` on CPU, the same bits)."""
    return t.mul_(gate) if owned else gate.to(t.dtype).mul_(t)


def _spatial(t: torch.Tensor, channels_last: bool) -> tuple[torch.Tensor, int]:
    """A 4-D tensor's positions flattened, as a view: ``(N, C, H*W)`` (dim 2), or
    ``(N, H*W, C)`` (dim 1) in channels-last layout."""
    if channels_last:
        return t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1]), 1
    return t.reshape(t.shape[0], t.shape[1], -1), 2


def _unspatial(flat: torch.Tensor, shape, channels_last: bool) -> torch.Tensor:
    """Inverse of :func:`_spatial` for a tensor of ``shape`` (N, C, H, W)."""
    if channels_last:
        return flat.view(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2)
    return flat.view(shape)

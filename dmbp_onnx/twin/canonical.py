"""LRP-canonical form of a twin: biases and per-channel affine maps inside their Linear/Conv modules.

Rule-based attribution libraries (zennit, and LRP in general) hook ``nn.Linear`` and
``nn.ConvNd`` modules and read their ``weight`` and ``bias``; every other module is a
gradient pass-through for them. The twin keeps ONNX's node granularity instead: a dense
layer exported as MatMul + Add is a bias-free ``nn.Linear`` followed by an add, and a
BatchNorm after a ReLU is a Mul + Add (or a BatchNorm module). The rules then miss those
biases and scales. :func:`canonicalize` rewrites a *copy* of the twin's module:

* a per-channel affine map (Add, Sub, Mul, Div by a constant, or an inference BatchNorm)
  right after a Linear/Conv, a mask site in between allowed, moves into that layer:
  ``s * (W x + b) + t = (s W) x + (s b + t)``, always exact;
* one right before a Linear/Conv moves into it: ``W (s x + t) + b = (W s) x + (W t + b)``,
  exact for a Linear and for a Conv without zero padding; a padded Conv takes only a pure
  scale (a folded shift would reach the zero-padded border, where the original sees zeros);
* any other such map stays where it is and is listed in :attr:`CanonicalModule.kept`.

Folds are computed in float64 and stored in the layer's dtype, so the forward pass
changes only by rounding. The twin itself, its mask sites and DMBP are untouched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp, TensorMetadata

from dmbp_onnx.twin.masks import MaskSite
from dmbp_onnx.twin.ops.conv import AutoPadConv, PaddedConv
from dmbp_onnx.twin.ops.elementwise import Binary
from dmbp_onnx.twin.ops.norm import BatchNormAnyRank

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORMS = {nn.BatchNorm2d: 4, nn.BatchNorm3d: 5}  # class -> the input rank it takes

Affine = tuple[torch.Tensor, torch.Tensor, int]
"""``(scale, shift, rank)``: a node computing ``scale * x + shift`` on a rank-``rank`` input."""


@dataclass
class CanonicalModule:
    """Result of :func:`canonicalize`.

    Attributes
    ----------
    module : torch.fx.GraphModule
        The rewritten copy of the twin's module (same inputs and outputs).
    folded : list of str
        One line per folded node: ``"<node> into <layer> (after|before)"``.
    kept : list of str
        Nodes applying a constant affine map (Add, Sub, Mul, Div by a constant; BatchNorm)
        that no layer absorbs exactly. A rule-based method passes relevance through them
        as a gradient, i.e. scaled by their factor.
    """

    module: fx.GraphModule
    folded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def canonicalize(twin, example: torch.Tensor) -> CanonicalModule:
    """An LRP-canonical copy of ``twin.module`` (see the module docstring).

    Parameters
    ----------
    twin : Twin
        The rebuilt model; not modified.
    example : torch.Tensor
        A valid input batch (on the twin's device). It is run once to learn the rank of
        every intermediate value, which decides whether a constant broadcasts per channel.

    Returns
    -------
    CanonicalModule
        The copy and what was folded or kept.
    """
    # The copy shares the twin's parameter and buffer tensors (never written in place here): a
    # layer that folding changes gets new tensors, every other layer costs no memory.
    tensors = [*twin.module.parameters(), *twin.module.buffers()]
    module = copy.deepcopy(twin.module, memo={id(t): t for t in tensors})
    with torch.no_grad():
        ShapeProp(module).propagate(example)
    ranks = {node.name: len(node.meta["tensor_meta"].shape) for node in module.graph.nodes
             if isinstance(node.meta.get("tensor_meta"), TensorMetadata)}
    result = CanonicalModule(module)
    progress = True
    while progress:
        progress = False
        for node in list(module.graph.nodes):
            affine = _affine(module, node, ranks)
            if affine is None:
                continue
            done = _fold_after(module, node, affine) or _fold_before(module, node, affine)
            if done:
                result.folded.append(done)
                progress = True
    result.kept = [node.name for node in module.graph.nodes if _affine(module, node, ranks) is not None]
    module.graph.lint()
    module.delete_all_unused_submodules()
    module.recompile()
    return result


def _called(module: fx.GraphModule, node: fx.Node) -> nn.Module | None:
    return module.get_submodule(node.target) if node.op == "call_module" else None


def _layer(module: fx.GraphModule, node: fx.Node) -> tuple[nn.Module, bool] | None:
    """``(core, zero_padded)`` when ``node`` calls a float Linear or Conv (possibly wrapped)."""
    sub = _called(module, node)
    if isinstance(sub, (PaddedConv, AutoPadConv)):
        core, padded = sub.conv, True
    elif isinstance(sub, _CONVS):
        core, padded = sub, any(int(p) != 0 for p in sub.padding)
    elif isinstance(sub, nn.Linear):
        core, padded = sub, False
    else:
        return None
    if not core.weight.is_floating_point() or (isinstance(core, _CONVS) and core.padding_mode != "zeros"):
        return None
    return core, padded


def _affine(module: fx.GraphModule, node: fx.Node, ranks: dict[str, int]) -> Affine | None:
    """``(scale, shift, rank)`` with ``node(x) = scale * x + shift`` (float64, broadcastable),
    when ``node`` is a constant affine map of one runtime float input of known rank ``rank``."""
    sub = _called(module, node)
    if sub is None or len(node.args) != 1 or not isinstance(node.args[0], fx.Node):
        return None
    rank = ranks.get(node.args[0].name)
    if rank is None:
        return None
    if isinstance(sub, Binary):
        found = _binary(sub)
    elif isinstance(sub, BatchNormAnyRank) or type(sub) in (nn.BatchNorm1d, *_BATCHNORMS):
        found = _batchnorm(sub, rank)
    else:
        return None
    return None if found is None else (found[0], found[1], rank)


def _binary(sub: Binary) -> tuple[torch.Tensor, torch.Tensor] | None:
    if sub.n_inputs != 2 or len(sub.const_positions) != 1 or sub.static_values:
        return None
    position = sub.const_positions[0]
    c = getattr(sub, f"const_{position}")
    if not c.is_floating_point():
        return None
    c = c.double()
    one, zero = torch.ones((), dtype=c.dtype, device=c.device), torch.zeros((), dtype=c.dtype, device=c.device)
    if sub.op == "add":
        return one, c
    if sub.op == "sub":
        return (one, -c) if position == 1 else (-one, c)
    if sub.op == "mul":
        return c, zero
    if position == 1 and bool((c != 0).all()):
        return 1.0 / c, zero
    return None


def _batchnorm(sub: nn.Module, rank: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Scale and shift of an inference batch norm over axis 1 of a rank-``rank`` input."""
    if isinstance(sub, BatchNormAnyRank):
        if sub.const_positions != (1, 2, 3, 4):
            return None
        gamma, beta, mean, var = (getattr(sub, f"const_{k}").double() for k in (1, 2, 3, 4))
        eps = sub.epsilon
    else:
        if sub.training or sub.running_mean is None or _BATCHNORMS.get(type(sub), rank) != rank:
            return None
        mean, var, eps = sub.running_mean.double(), sub.running_var.double(), sub.eps
        gamma = sub.weight.double() if sub.weight is not None else torch.ones_like(mean)
        beta = sub.bias.double() if sub.bias is not None else torch.zeros_like(mean)
    if rank < 2:
        return None
    scale = gamma / torch.sqrt(var + eps)
    shape = (-1,) + (1,) * (rank - 2)
    return scale.reshape(shape), (beta - mean * scale).reshape(shape)


def _per_channel(t: torch.Tensor, rank: int, axis: int, channels: int) -> torch.Tensor | None:
    """``t`` (broadcast against a rank-``rank`` tensor) as a ``(channels,)`` vector over ``axis``."""
    if t.dim() > rank:
        return None  # broadcasting would add axes
    shape = (1,) * (rank - t.dim()) + tuple(t.shape)
    if any(d != 1 for k, d in enumerate(shape) if k != axis) or shape[axis] not in (1, channels):
        return None
    return t.reshape(-1).expand(channels) if t.numel() == 1 else t.reshape(channels)


def _vectors(affine: Affine, axis: int, channels: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    scale, shift, rank = affine
    s, t = _per_channel(scale, rank, axis, channels), _per_channel(shift, rank, axis, channels)
    return None if s is None or t is None else (s, t)


def _channel_axis(core: nn.Module, rank: int) -> int | None:
    """Axis of the layer's channels in a rank-``rank`` input or output, None when ranks disagree."""
    if isinstance(core, nn.Linear):
        return rank - 1
    return 1 if rank == core.weight.dim() else None


def _set(core: nn.Module, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """Give ``core`` a new weight and bias (computed in float64) in its own dtype; a weight equal to
    the current one (a bias folded alone) keeps the current tensor, which may be the twin's."""
    dtype = core.weight.dtype
    weight = weight.to(dtype)
    if not torch.equal(weight, core.weight):
        core.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
    core.bias = nn.Parameter(bias.to(dtype).contiguous(), requires_grad=False)


def _weight_bias(core: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    weight = core.weight.double()
    bias = core.bias.double() if core.bias is not None else weight.new_zeros(weight.shape[0])
    return weight, bias


def _fold_after(module: fx.GraphModule, node: fx.Node, affine: Affine) -> str | None:
    """Fold the affine ``node`` into the layer computing its input (through a mask site)."""
    source = node.args[0]
    chain = [source]
    if isinstance(_called(module, source), MaskSite):
        chain.append(source.args[0])
    found = _layer(module, chain[-1])
    if found is None or any(len(n.users) != 1 for n in chain):
        return None
    core = found[0]
    axis = _channel_axis(core, affine[2])
    vectors = None if axis is None else _vectors(affine, axis, core.weight.shape[0])
    if vectors is None:
        return None
    s, t = vectors
    weight, bias = _weight_bias(core)
    _set(core, weight * s.reshape((-1,) + (1,) * (weight.dim() - 1)), bias * s + t)
    node.replace_all_uses_with(source)
    module.graph.erase_node(node)
    return f"{node.name} into {chain[-1].name} (after)"


def _fold_before(module: fx.GraphModule, node: fx.Node, affine: Affine) -> str | None:
    """Fold the affine ``node`` into the one layer reading its output."""
    if len(node.users) != 1:
        return None
    (reader,) = node.users
    found = _layer(module, reader)
    if found is None or reader.args != (node,):
        return None
    core, padded = found
    axis = _channel_axis(core, affine[2])
    channels = core.weight.shape[1] * (core.groups if isinstance(core, _CONVS) else 1)
    vectors = None if axis is None else _vectors(affine, axis, channels)
    if vectors is None or (padded and bool((vectors[1] != 0).any())):
        return None
    weight, bias = _weight_bias(core)
    groups = core.groups if isinstance(core, _CONVS) else 1
    per_group = weight.shape[0] // groups
    group_of = torch.arange(weight.shape[0], device=weight.device) // per_group
    s, t = (v.reshape(groups, -1)[group_of] for v in vectors)  # (out, in per group)
    summed = weight.flatten(2).sum(2) if weight.dim() > 2 else weight  # (out, in per group)
    _set(core, weight * s.reshape(s.shape + (1,) * (weight.dim() - 2)), bias + (summed * t).sum(1))
    reader.args = (node.args[0],)
    module.graph.erase_node(node)
    return f"{node.name} into {reader.name} (before)"

"""Model-randomisation sanity check (Adebayo et al., NeurIPS 2018).

The parameterised layers of a copy of the twin are re-initialised from the top
(output) down, cumulatively; after each step the map is recomputed and compared
with the original map by Spearman rank correlation, per image. A map that
explains the model must change; one that ignores it (e.g. an edge detector on
the input) stays at 1.

Both the correlation of ``|map|`` (the usual headline, as in Adebayo et al.) and
of the signed map are reported.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from dmbp_onnx.device import to_numpy
from dmbp_onnx.errors import InputError
from dmbp_onnx.op_traits import op_traits

AttributeFn = Callable[..., "np.ndarray | torch.Tensor"]


@dataclass(frozen=True)
class RandomisationStep:
    """Maps after re-initialising the layers down to and including ``onnx_node``.

    Attributes
    ----------
    onnx_node : str
        ONNX node whose parameters were re-initialised at this step.
    module : str
        Its submodule name in the twin's GraphModule.
    spearman_abs : numpy.ndarray
        ``(N,)`` Spearman correlation of ``|map|`` with the original ``|map|`` (headline).
    spearman_signed : numpy.ndarray
        ``(N,)`` Spearman correlation of the signed maps.
    """

    onnx_node: str
    module: str
    spearman_abs: np.ndarray
    spearman_signed: np.ndarray

    @property
    def mean_abs(self) -> float:
        """Mean over images of ``spearman_abs`` (NaN entries left out)."""
        return _nanmean(self.spearman_abs)

    @property
    def mean_signed(self) -> float:
        """Mean over images of ``spearman_signed`` (NaN entries left out)."""
        return _nanmean(self.spearman_signed)


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def rankdata(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties given their average rank."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(flat, kind="mergesort")
    ordered = flat[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1
    bounds = np.r_[np.flatnonzero(starts), flat.size]
    average = 0.5 * (bounds[:-1] + bounds[1:] - 1) + 1
    ranks = np.empty(flat.size)
    ranks[order] = average[group]
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two arrays (flattened); NaN when either is constant."""
    ra, rb = rankdata(a), rankdata(b)
    da, db = ra - ra.mean(), rb - rb.mean()
    norm = np.sqrt((da * da).sum() * (db * db).sum())
    if norm == 0:
        return float("nan")
    return float(np.clip((da * db).sum() / norm, -1.0, 1.0))


def _layer_tensors(layer: nn.Module, op: str) -> list[torch.Tensor]:
    """The learned tensors of one layer: its floating parameters or, for an op whose
    ``randomisable`` trait is set (a linear layer whose converter keeps its constant
    weights as buffers), those buffers."""
    params = [p for p in layer.parameters() if p.is_floating_point()]
    if params or not op_traits(op).randomisable:
        return params
    return [b for b in layer.buffers() if b.is_floating_point()]


def parameterised_layers(twin) -> list[tuple[str, str]]:
    """``(submodule name, ONNX node)`` of every layer with learned tensors, in graph order.

    These are the twin's convolutions and fully-connected layers (the mask sites' layers
    and the output layer), plus any other op with parameters.
    """
    ops = {node.name: node.op for node in twin.clean_graph.graph.nodes}
    layers = []
    for node in twin.module.graph.nodes:
        if node.op != "call_module":
            continue
        onnx_node = twin.node_names.get(node.target, node.target)
        if _layer_tensors(twin.module.get_submodule(node.target), ops.get(onnx_node, "")):
            layers.append((node.target, onnx_node))
    return layers


def _reinitialise(tensors: list[torch.Tensor], generator: torch.Generator) -> None:
    """Draw each tensor from N(0, s^2), s = that tensor's own standard deviation.

    A single-element tensor uses its absolute value as s; a tensor with zero spread
    (e.g. an all-zero bias) stays zero.
    """
    with torch.no_grad():
        for tensor in tensors:
            flat = tensor.detach().to(torch.float64).ravel()
            scale = flat.abs()[0] if flat.numel() == 1 else flat.std()
            noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float64)
            tensor.copy_((noise * scale.cpu()).to(dtype=tensor.dtype, device=tensor.device))


def _private_copy(twin):
    """A copy of the twin whose module (weights included) is its own.

    ``copy.deepcopy(twin)`` fails (onnx-graphsurgeon graphs cannot be deep-copied), so the
    twin is copied shallowly and only its module, the one thing the check changes, deeply.
    """
    copied = copy.copy(twin)
    copied.module = copy.deepcopy(twin.module)
    return copied


def _maps(attribute_fn: AttributeFn, twin, x: torch.Tensor, targets) -> np.ndarray:
    maps = attribute_fn(twin, x, targets)
    array = to_numpy(maps)
    if array.ndim != 3 or array.shape[0] != x.shape[0]:
        raise InputError(f"attribute_fn must return maps of shape (N, H, W); got {array.shape}")
    return array.astype(np.float64)


def model_randomisation(
    twin,
    attribute_fn: AttributeFn,
    x: torch.Tensor,
    targets,
    seed: int = 0,
) -> list[RandomisationStep]:
    """Cascading model randomisation, top layer first.

    Parameters
    ----------
    twin : dmbp_onnx.Twin
        The model; never modified (the check works on a copy with its own module).
    attribute_fn : callable
        ``attribute_fn(twin, x, targets) -> (N, H, W)`` per-pixel maps.
    x : torch.Tensor
        ``(N, ...)`` images in the model's layout.
    targets : sequence of int
        Target class per image (passed through to ``attribute_fn``).
    seed : int
        Seed of the normal re-initialisation (one generator, consumed top layer first).

    Returns
    -------
    list of RandomisationStep
        One step per parameterised layer, from the output layer down; step k has the
        top k + 1 layers re-initialised.
    """
    copied = _private_copy(twin)
    layers = parameterised_layers(copied)
    if not layers:
        raise InputError("the model has no parameterised layer to randomise")
    original = _maps(attribute_fn, copied, x, targets)
    ops = {node.name: node.op for node in copied.clean_graph.graph.nodes}
    generator = torch.Generator().manual_seed(seed)
    steps = []
    for module_name, onnx_node in reversed(layers):
        layer = copied.module.get_submodule(module_name)
        _reinitialise(_layer_tensors(layer, ops.get(onnx_node, "")), generator)
        maps = _maps(attribute_fn, copied, x, targets)
        if maps.shape != original.shape:
            raise InputError(f"attribute_fn changed its map shape from {original.shape} to {maps.shape}")
        signed = np.array([spearman(o, m) for o, m in zip(original, maps)])
        absolute = np.array([spearman(np.abs(o), np.abs(m)) for o, m in zip(original, maps)])
        steps.append(RandomisationStep(onnx_node, module_name, absolute, signed))
    return steps

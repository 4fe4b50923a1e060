"""Converter registry keyed by ``(domain, op_type, since_version)``.

A node is resolved through :func:`onnx.defs.get_schema` with the opset the model
imports for the node's domain, so each converter is registered for the exact
schema revisions it implements, and an unknown revision is refused by name
instead of being silently treated like another one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import torch
from onnx import numpy_helper
from onnx_graphsurgeon.ir.tensor import LazyValues, SparseValues
from torch import nn

from dmbp_onnx.errors import UnsupportedOpError
from dmbp_onnx.op_traits import TRAITS

DEFAULT_DOMAIN = ""


@dataclass
class Converted:
    """What a converter returns.

    Parameters
    ----------
    module : torch.nn.Module
        Computes the node's outputs (a tensor, or a tuple for several outputs).
    inputs : list of int
        Indices of the node inputs fed to ``module.forward`` at run time, in order.
        Inputs not listed are constants the converter consumed at build time.
    """

    module: nn.Module
    inputs: list[int]


@dataclass
class NodeContext:
    """A node as a converter sees it: attributes, constant inputs, opset.

    Parameters
    ----------
    node : onnx_graphsurgeon.Node
        The node being converted.
    opset : int
        The opset version the model imports for the node's domain.
    since_version : int
        The schema revision the node resolved to.
    graph_outputs : frozenset of str
        Names of the graph's declared outputs (an output the converter cannot compute
        must be refused when it is one of them).
    """

    node: gs.Node
    opset: int
    since_version: int
    graph_outputs: frozenset[str] = frozenset()
    _used_attrs: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        """Name of the node."""
        return self.node.name

    @property
    def op(self) -> str:
        """Operator type of the node."""
        return self.node.op

    def fail(self, detail: str) -> UnsupportedOpError:
        """Build the error for something this node uses that cannot be converted exactly."""
        return UnsupportedOpError(self.node.op, self.opset, self.node.name, detail)

    def attr(self, name: str, default: Any = None) -> Any:
        """Return attribute ``name`` (or ``default``) and mark it as understood."""
        self._used_attrs.add(name)
        value = self.node.attrs.get(name, default)
        if isinstance(value, bytes):
            value = value.decode()
        return value

    def check_attributes(self, supported: Iterable[str]) -> None:
        """Raise naming the first attribute of the node outside ``supported``."""
        allowed = set(supported)
        for key in self.node.attrs:
            if key not in allowed:
                raise self.fail(f"attribute '{key}' is not supported")

    def has_input(self, index: int) -> bool:
        """True when optional input ``index`` is present (not omitted, not empty)."""
        return index < len(self.node.inputs) and self.node.inputs[index].name != ""

    def is_constant(self, index: int) -> bool:
        """True when input ``index`` is present and its value is known at build time."""
        return self.has_input(index) and isinstance(self.node.inputs[index], gs.Constant)

    def _constant_input(self, index: int) -> gs.Constant | None:
        """The constant feeding input ``index``; None when absent; raises if not constant."""
        if not self.has_input(index):
            return None
        tensor = self.node.inputs[index]
        if not isinstance(tensor, gs.Constant):
            raise self.fail(
                f"input {index} ('{tensor.name}') must be a constant (initializer) for this converter"
            )
        return tensor

    def constant(self, index: int, default: Any = None) -> np.ndarray | None:
        """Value of constant input ``index``; ``default`` when absent; raises if not constant."""
        tensor = self._constant_input(index)
        return default if tensor is None else np.asarray(tensor.values)

    def constant_tensor(self, index: int) -> torch.Tensor:
        """Constant input ``index`` as a torch tensor of its own (dtype kept), copied once.

        A constant not yet read from the ONNX model is read here, and the graph keeps that
        read-only array as its value (what ``values`` would load, without
        onnx-graphsurgeon's extra writable copy); the returned tensor is always a copy,
        so the twin never shares memory with the graph.
        """
        tensor = self._constant_input(index)
        if tensor is None:
            raise self.fail(f"missing required input {index}")
        lazy = getattr(tensor, "_values", None)
        if isinstance(lazy, LazyValues) and not isinstance(lazy, SparseValues):
            tensor.values = numpy_helper.to_array(lazy.tensor)  # read-only, over bytes of its own
        return torch.tensor(tensor.values)  # torch's allocator: no numpy huge-page stalls

    def variable_inputs(self) -> list[int]:
        """Indices of the present inputs that are not constants."""
        return [
            i for i in range(len(self.node.inputs)) if self.has_input(i) and not self.is_constant(i)
        ]


def module_with_weights(
    cls: type[nn.Module], weights: dict[str, torch.Tensor | None], **kwargs: Any
) -> nn.Module:
    """``cls(**kwargs)`` holding ``weights`` as frozen parameters, without random initialisation.

    The module is built on the meta device, then each parameter named in ``weights``
    becomes the given tensor (cast to the parameter's dtype and broadcast to its shape,
    as ``copy_`` would; no copy when both already agree). A None entry stands for a
    parameter the module was built without.

    Raises
    ------
    RuntimeError
        A tensor that does not broadcast to its parameter's shape.
    """
    module = cls(**kwargs, device="meta")
    for name, value in weights.items():
        if value is None:
            continue
        param = getattr(module, name)
        value = value.to(param.dtype)
        if value.shape != param.shape:
            value = value.expand(param.shape)
        setattr(module, name, nn.Parameter(value.contiguous(), requires_grad=False))
    left = [name for name, param in module.named_parameters() if param.is_meta]
    if left:
        raise RuntimeError(f"{cls.__name__} parameters {left} were not given")
    return module


ConverterFn = Callable[[NodeContext], Converted]

_REGISTRY: dict[tuple[str, str, int], ConverterFn] = {}


def converter(op_type: str, versions: Sequence[int], domain: str = DEFAULT_DOMAIN) -> Callable:
    """Register a converter for the given schema revisions (``since_version`` values).

    An op of the default domain must have its traits declared in
    :data:`dmbp_onnx.op_traits.TRAITS` (piecewise linearity, affinity, mask site, rectifier,
    randomisation): the rest of the package reads them there.

    Parameters
    ----------
    op_type : str
        ONNX operator type.
    versions : sequence of int
        Every ``since_version`` of the operator's schema this converter implements.
    domain : str
        Operator domain ("" is the default ai.onnx domain).
    """

    if domain == DEFAULT_DOMAIN and op_type not in TRAITS:
        raise RuntimeError(f"{op_type} has no entry in dmbp_onnx.op_traits.TRAITS: declare its traits there")

    def register(fn: ConverterFn) -> ConverterFn:
        for version in versions:
            key = (domain, op_type, version)
            if key in _REGISTRY:
                raise RuntimeError(f"converter for {key} registered twice")
            _REGISTRY[key] = fn
        return fn

    return register


def supported_revisions(op_type: str, domain: str = DEFAULT_DOMAIN) -> list[int]:
    """Sorted ``since_version`` values registered for ``op_type``."""
    return sorted(v for (d, op, v) in _REGISTRY if d == domain and op == op_type)


def resolve(node: gs.Node, opset: int, domain: str = DEFAULT_DOMAIN) -> tuple[ConverterFn, int]:
    """Find the converter for ``node`` in a model importing ``opset`` for its domain.

    Returns
    -------
    (converter, since_version)

    Raises
    ------
    UnsupportedOpError
        When the operator or its schema revision has no converter.
    """
    try:
        schema = onnx.defs.get_schema(node.op, opset, domain)
    except onnx.defs.SchemaError:
        raise UnsupportedOpError(
            node.op, opset, node.name, f"no ONNX schema for domain '{domain or 'ai.onnx'}'"
        ) from None
    key = (domain, node.op, schema.since_version)
    if key not in _REGISTRY:
        known = supported_revisions(node.op, domain)
        detail = (
            f"schema revision {schema.since_version} has no converter (supported revisions: {known})"
            if known
            else "operator has no converter"
        )
        raise UnsupportedOpError(node.op, opset, node.name, detail)
    return _REGISTRY[key], schema.since_version


def registered_ops() -> dict[str, list[int]]:
    """Every registered op type with its supported revisions (for docs and ``inspect``)."""
    ops: dict[str, list[int]] = {}
    for domain, op, version in _REGISTRY:
        ops.setdefault(op if not domain else f"{domain}.{op}", []).append(version)
    return {op: sorted(vs) for op, vs in sorted(ops.items())}

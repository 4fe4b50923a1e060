"""Structural checks of a parsed model, each raising a typed error naming the problem.

They run on the protobuf before onnx's own checker, so that a hostile or broken file
fails fast with a message that names the node, tensor or op at fault.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from dmbp_onnx.errors import ModelLoadError, UnsupportedModelError, UnsupportedOpError
from dmbp_onnx.graph.external_data import all_tensors
from dmbp_onnx.graph.limits import check_tensor_declaration, check_value_shape

MAX_NODES = 1_000_000
"""Refuse a graph with more nodes than this once local functions are inlined."""
SUPPORTED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
FLOAT_TYPES = frozenset(
    {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
)


def node_label(node: onnx.NodeProto, index: int) -> str:
    """``node 'name' (Op)``, or ``node #index (Op)`` when the node has no name."""
    return f"node '{node.name}' ({node.op_type})" if node.name else f"node #{index} ({node.op_type})"


def _domain(name: str) -> str:
    return "" if name in ("", "ai.onnx") else name


def imported_opsets(model: onnx.ModelProto) -> dict[str, int]:
    """Opset per domain; refuses a missing, duplicated or unknown default-domain import.

    Raises
    ------
    ModelLoadError
        No opset import, or one domain imported twice with different versions.
    UnsupportedModelError
        A default-domain opset newer than this onnx release knows.
    """
    if not model.opset_import:
        raise ModelLoadError("the model has no opset import (opset_import is empty)")
    opsets: dict[str, int] = {}
    for entry in model.opset_import:
        domain = _domain(entry.domain)
        if domain in opsets and opsets[domain] != entry.version:
            raise ModelLoadError(
                f"domain '{domain or 'ai.onnx'}' is imported twice, "
                f"at opsets {opsets[domain]} and {entry.version}"
            )
        opsets[domain] = int(entry.version)
    if "" not in opsets and any(_domain(n.domain) == "" for n in model.graph.node):
        raise ModelLoadError("the model uses ai.onnx operators but does not import the ai.onnx opset")
    newest = onnx.defs.onnx_opset_version()
    if "" in opsets and not 1 <= opsets[""] <= newest:
        raise UnsupportedModelError(f"ai.onnx opset {opsets['']} is outside the known range 1..{newest}")
    return opsets


def check_function_expansion(model: onnx.ModelProto, limit: int = MAX_NODES) -> None:
    """Refuse recursive local functions and calls that would inline to more than ``limit`` nodes.

    Counted without inlining, so nested calls that double at every level cannot blow up.
    """
    functions = {(f.domain, f.name, f.overload): f for f in model.functions}
    sizes: dict[tuple, int] = {}
    active: set[tuple] = set()

    def size(nodes) -> int:
        total = 0
        for node in nodes:
            key = (node.domain, node.op_type, node.overload)
            if key not in functions:
                total += 1
                continue
            if key in active:
                raise ModelLoadError(f"model-local function '{node.domain}::{node.op_type}' calls itself")
            if key not in sizes:
                active.add(key)
                sizes[key] = size(functions[key].node)
                active.discard(key)
            total += sizes[key]
            if total > limit:
                break
        return total

    count = size(model.graph.node)
    if count > limit:
        raise ModelLoadError(f"inlining the model's local functions would give more than {limit} nodes")


def check_header(model: onnx.ModelProto) -> None:
    """Refuse a model without IR version, graph, nodes, inputs or outputs, or with sparse weights."""
    if model.ir_version <= 0:
        raise ModelLoadError("not an ONNX model: no IR version (wrong file type or garbage bytes?)")
    if not model.HasField("graph"):
        raise ModelLoadError("not an ONNX model: it has no graph")
    graph = model.graph
    if not graph.node:
        raise ModelLoadError("the graph is empty: it has no nodes")
    if not graph.output:
        raise ModelLoadError("the graph declares no outputs")
    initializers = {t.name for t in graph.initializer}
    if not [v for v in graph.input if v.name not in initializers]:
        raise ModelLoadError("the graph declares no inputs")
    if graph.sparse_initializer:
        name = graph.sparse_initializer[0].values.name
        raise UnsupportedModelError(f"sparse initializer '{name}' is not supported")


def check_ops(model: onnx.ModelProto, opsets: dict[str, int]) -> None:
    """Refuse control flow, domains that are not imported and custom domains.

    Raises
    ------
    UnsupportedOpError
        A node with a subgraph (If, Loop, Scan, ...) or from a custom domain.
    ModelLoadError
        A node from a domain the model does not import.
    """
    for index, node in enumerate(model.graph.node):
        domain = _domain(node.domain)
        name = node.name or f"#{index}"
        if domain not in opsets:
            raise ModelLoadError(
                f"{node_label(node, index)} uses domain '{domain}', which the model does not import"
            )
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            detail = "control flow (subgraphs) is not supported"
            raise UnsupportedOpError(node.op_type, opsets[domain], name, detail)
        if domain not in SUPPORTED_DOMAINS:
            raise UnsupportedOpError(
                node.op_type, opsets[domain], name, f"operator from the custom domain '{domain}'"
            )


def check_names(model: onnx.ModelProto) -> None:
    """Refuse duplicate graph inputs, initializers, outputs and produced tensor names.

    Duplicate node names are legal ONNX (onnxruntime runs them); :func:`clean` renames them.
    """
    graph = model.graph
    for what, names in (
        ("graph input", [v.name for v in graph.input]),
        ("initializer", [t.name for t in graph.initializer]),
        ("graph output", [v.name for v in graph.output]),
    ):
        dups = [name for name, count in Counter(names).items() if count > 1]
        if dups:
            raise ModelLoadError(f"duplicate {what} '{dups[0]}'")
    sources = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    produced: dict[str, str] = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if not name:
                continue
            if name in produced:
                raise ModelLoadError(
                    f"tensor '{name}' is produced twice: by {produced[name]} and {node_label(node, index)}"
                )
            if name in sources:
                raise ModelLoadError(
                    f"{node_label(node, index)} overwrites the graph input or initializer '{name}'"
                )
            produced[name] = node_label(node, index)


def check_connected(model: onnx.ModelProto) -> None:
    """Refuse dangling inputs, unproduced graph outputs and cycles."""
    graph = model.graph
    known = {v.name for v in graph.input} | {t.name for t in graph.initializer}
    producer = {name: k for k, node in enumerate(graph.node) for name in node.output if name}
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in known and name not in producer:
                raise ModelLoadError(
                    f"{node_label(node, index)} reads tensor '{name}', which nothing produces"
                )
    for value in graph.output:
        if value.name not in known and value.name not in producer:
            raise ModelLoadError(f"graph output '{value.name}' is not produced by any node")
    waiting = [sum(1 for n in node.input if n in producer) for node in graph.node]
    consumers: dict[int, list[int]] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name in producer:
                consumers.setdefault(producer[name], []).append(index)
    ready = [k for k, count in enumerate(waiting) if count == 0]
    done = 0
    while ready:
        k = ready.pop()
        done += 1
        for consumer in consumers.get(k, []):
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                ready.append(consumer)
    if done < len(graph.node):
        stuck = next(k for k, count in enumerate(waiting) if count > 0)
        raise ModelLoadError(f"the graph has a cycle through {node_label(graph.node[stuck], stuck)}")


def check_declarations(model: onnx.ModelProto) -> list[int | None]:
    """Refuse absurd or inconsistent tensor and shape declarations, without allocating.

    Returns
    -------
    list of (int or None)
        Per tensor of :func:`~dmbp_onnx.graph.external_data.all_tensors`, in order: how many
        non-finite values a float tensor whose raw bytes this had to read holds (counted now,
        refused later by :func:`check_finite`, in its turn); None for the other tensors.
    """
    non_finite: list[int | None] = []
    for label, tensor in all_tensors(model):
        raw = check_tensor_declaration(label, tensor)
        if raw is None or tensor.data_type not in FLOAT_TYPES:
            non_finite.append(None)
        else:
            values = np.frombuffer(raw, dtype=helper.tensor_dtype_to_np_dtype(tensor.data_type))
            non_finite.append(_non_finite(values))
    graph = model.graph
    for label, values in (
        ("graph input", graph.input),
        ("graph output", graph.output),
        ("value_info", graph.value_info),
    ):
        for value in values:
            check_value_shape(label, value)
    return non_finite


def check_inputs(model: onnx.ModelProto) -> None:
    """Refuse graph inputs that are not float tensors or have a zero-size dimension.

    Raises
    ------
    UnsupportedModelError
        A non-tensor or non-float input.
    ModelLoadError
        A zero-size dimension.
    """
    initializers = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        if not value.type.HasField("tensor_type"):
            raise UnsupportedModelError(f"graph input '{value.name}' is not a tensor")
        elem = value.type.tensor_type.elem_type
        if elem not in FLOAT_TYPES:
            dtype = onnx.TensorProto.DataType.Name(elem) if elem else "undefined"
            raise UnsupportedModelError(
                f"graph input '{value.name}' has type {dtype}; only float inputs are supported"
            )
        dims = value.type.tensor_type.shape.dim
        if any(d.HasField("dim_value") and d.dim_value == 0 for d in dims):
            shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in dims]
            raise ModelLoadError(f"graph input '{value.name}' has a zero-size dimension: {shape}")


def _non_finite(values: np.ndarray) -> int:
    """How many values are NaN or infinite."""
    if values.dtype.kind == "f" and (
        values.size == 0 or (np.isfinite(values.min()) and np.isfinite(values.max()))
    ):
        return 0  # NaN propagates through min/max, and an infinity is an extreme: no temporary
    return int(np.size(values) - np.count_nonzero(np.isfinite(values)))


def check_finite(model: onnx.ModelProto, non_finite: Sequence[int | None] = ()) -> None:
    """Refuse float weights (initializers, Constant values) holding NaN or infinity.

    Parameters
    ----------
    model : onnx.ModelProto
        The model, its external data read in.
    non_finite : sequence of (int or None)
        What :func:`check_declarations` counted, per tensor in order; None entries, and
        tensors past its end, are read here.
    """
    for index, (label, tensor) in enumerate(all_tensors(model)):
        if tensor.data_type not in FLOAT_TYPES:
            continue
        bad = non_finite[index] if index < len(non_finite) else None
        if bad is None:
            bad = _non_finite(numpy_helper.to_array(tensor))
        if bad:
            raise ModelLoadError(f"{label} holds {bad} non-finite value(s) (NaN or infinity)")

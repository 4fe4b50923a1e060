"""Inspect a graph: op histograms, input layout and DMBP eligibility (piecewise linearity).

A node is *on the data path* when one of its inputs depends on a float graph input
through values (not only through shapes or types: ``Shape``/``Size`` cut the
dependency, and so does the type-only second input of ``CastLike``).
Eligibility asks whether every data-path node between the inputs and the chosen
outputs is piecewise linear in its data operands.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from dmbp_onnx.graph.passes import CleanGraph
from dmbp_onnx.graph.specs import declared_shape
from dmbp_onnx.op_traits import op_traits

_SHAPE_OPS = frozenset({"Shape", "Size"})
# Inputs whose type alone matters (their values never reach the output), by op.
_TYPE_ONLY_INPUTS = {"CastLike": frozenset({1})}
_TERMINAL_ACTIVATIONS = frozenset({"Softmax", "LogSoftmax"})
_FLOAT_TYPES = frozenset(
    {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}
)


def _is_float(dtype) -> bool:
    if dtype is None:
        return True  # undeclared: assume data
    if isinstance(dtype, int):  # an onnx type without a numpy equivalent
        return dtype in _FLOAT_TYPES
    try:
        return np.issubdtype(np.dtype(dtype), np.floating)
    except TypeError:
        return str(dtype).lower().startswith(("float", "bfloat"))


def _value_inputs(node: gs.Node) -> list[gs.Tensor]:
    """The inputs whose values (not only type or shape) ``node`` reads."""
    if node.op in _SHAPE_OPS:
        return []
    type_only = _TYPE_ONLY_INPUTS.get(node.op, frozenset())
    return [t for k, t in enumerate(node.inputs) if k not in type_only]


def _data_tensors(graph: gs.Graph) -> set[str]:
    """Names of tensors whose values depend on a float graph input."""
    data = {t.name for t in graph.inputs if _is_float(t.dtype)}
    for node in _topo(graph):
        if any(t.name in data for t in _value_inputs(node)):
            data.update(t.name for t in node.outputs)
    return data


def _topo(graph: gs.Graph) -> list[gs.Node]:
    """Nodes in dependency order without mutating ``graph``."""
    produced_by = {id(t): n for n in graph.nodes for t in n.outputs}
    order: list[gs.Node] = []
    state: dict[int, int] = {}
    for root in graph.nodes:
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                if state.get(id(node)) != 2:
                    state[id(node)] = 2
                    order.append(node)
                continue
            if state.get(id(node)):
                continue
            state[id(node)] = 1
            stack.append((node, True))
            for tensor in node.inputs:
                producer = produced_by.get(id(tensor))
                if producer is not None and not state.get(id(producer)):
                    stack.append((producer, False))
    return order


def _value_ancestors(graph: gs.Graph, outputs: list[gs.Tensor]) -> list[gs.Node]:
    """Nodes whose values (not only shapes) flow into ``outputs``."""
    produced_by = {id(t): n for n in graph.nodes for t in n.outputs}
    seen: set[int] = set()
    stack = [produced_by[id(t)] for t in outputs if id(t) in produced_by]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(produced_by[id(t)] for t in _value_inputs(node) if id(t) in produced_by)
    return [n for n in _topo(graph) if id(n) in seen]


def _is_piecewise_linear(node: gs.Node, data: set[str]) -> bool:
    flags = [t.name in data for t in node.inputs]
    op = node.op
    kind = op_traits(op, node.domain).piecewise_linear
    if kind == "always":
        return True
    if kind == "in_first":
        return not any(flags[1:])
    if kind == "in_one":
        return sum(flags) <= 1
    if kind == "in_one_of_two":
        return sum(flags[:2]) <= 1 and not any(flags[2:])
    if kind != "cast":
        return False
    if op == "Cast":
        return int(node.attrs.get("to", 0)) in _FLOAT_TYPES
    return len(node.inputs) > 1 and node.inputs[1].dtype is not None and _is_float(node.inputs[1].dtype)  # CastLike


def _is_terminal(node: gs.Node, target_names: set[str], inside: set[int]) -> bool:
    """Whether ``node`` writes targets only and no node between inputs and targets reads them."""
    return all(t.name in target_names for t in node.outputs) and not any(
        id(reader) in inside for t in node.outputs for reader in t.outputs
    )


def offending_nodes(graph: gs.Graph, outputs: list[str] | None = None) -> list[tuple[str, str]]:
    """Every non-piecewise-linear node between the graph inputs and ``outputs``.

    Parameters
    ----------
    graph : onnx_graphsurgeon.Graph
        The graph to inspect (not modified).
    outputs : list of str, optional
        Names of the output tensors of interest; all graph outputs by default.

    Returns
    -------
    list of (str, str)
        ``(node name, op type)`` in topological order. A terminal ``Softmax``/``LogSoftmax``
        whose output is one of ``outputs`` and nodes that only compute shapes are not listed.
    """
    tensors = graph.tensors()
    if outputs is None:
        targets = list(graph.outputs)
    else:
        missing = [name for name in outputs if name not in tensors]
        if missing:
            raise KeyError(f"no tensor named {missing[0]!r} in the graph")
        targets = [tensors[name] for name in outputs]
    target_names = {t.name for t in targets}
    data = _data_tensors(graph)
    found = []
    between = _value_ancestors(graph, targets)
    inside = {id(n) for n in between}
    for node in between:
        if not any(t.name in data for t in _value_inputs(node)):
            continue
        if node.op in _TERMINAL_ACTIVATIONS and _is_terminal(node, target_names, inside):
            continue
        if not _is_piecewise_linear(node, data):
            found.append((node.name, node.op))
    return found


def _value_info(value: onnx.ValueInfoProto) -> dict:
    tensor = value.type.tensor_type
    shape = declared_shape(value)
    return {
        "name": value.name,
        "shape": list(shape) if shape is not None else None,
        "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type) if tensor.elem_type else None,
    }


def inspect_model(model: onnx.ModelProto, clean: CleanGraph) -> dict:
    """A JSON-serialisable summary of ``model`` and its cleaned graph.

    Parameters
    ----------
    model : onnx.ModelProto
        The model as loaded.
    clean : CleanGraph
        The result of :func:`dmbp_onnx.graph.passes.clean` on ``model``.

    Returns
    -------
    dict
        ``opsets``, ``ir_version``, ``producer`` (name, version), ``inputs``/``outputs``
        (name, shape, dtype; the first input also ``layout`` and ``channel_axis``),
        ``ops`` and ``ops_clean`` (op histograms), ``passes_applied``,
        ``output_activation`` and ``eligibility`` (``eligible``, ``offending``).
    """
    initializers = {t.name for t in model.graph.initializer}
    inputs = [_value_info(v) for v in model.graph.input if v.name not in initializers]
    if inputs:
        inputs[0]["layout"] = clean.layout
        inputs[0]["channel_axis"] = clean.channel_axis
    offending = offending_nodes(clean.graph)
    activation = clean.output_activation
    return {
        "opsets": dict(clean.opsets),
        "ir_version": int(model.ir_version),
        "producer": {"name": model.producer_name, "version": model.producer_version},
        "inputs": inputs,
        "outputs": [_value_info(v) for v in model.graph.output],
        "ops": dict(Counter(n.op_type for n in model.graph.node)),
        "ops_clean": dict(Counter(n.op for n in clean.graph.nodes)),
        "passes_applied": list(clean.passes_applied),
        "output_activation": list(activation) if activation else None,
        "eligibility": {
            "eligible": not offending,
            "offending": [{"node": name, "op": op} for name, op in offending],
        },
    }

"""Which output a model is explained on, and the subgraph that output needs.

The default explained output (:func:`choose_output` without a name) is, in order:

1. the only output, when the model has one;
2. the first float tensor output computed by a ``Softmax``/``LogSoftmax`` (class
   probabilities; shape-only ops such as ``Identity``/``Reshape``/``Flatten`` after it
   are looked through);
3. the first float tensor output of rank 2 (class scores ``(N, classes)``);
4. the first float tensor output;
5. the first output.

Labels (integer outputs) and non-tensor outputs (ZipMap's sequences of maps) are never
chosen by rules 2-4. :func:`select_output` prunes a model to what one output needs, so
operators only on other outputs' paths (an sklearn label path's ``ArgMax``) no longer
block the twin.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from dmbp_onnx.errors import UnknownOutputError
from dmbp_onnx.graph.skeleton import copy_fields
from dmbp_onnx.graph.structure import FLOAT_TYPES

_LOOK_THROUGH = frozenset({"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast", "Transpose"})
_PROBABILITIES = frozenset({"Softmax", "LogSoftmax"})


@dataclass(frozen=True)
class OutputChoice:
    """The explained output and why it was chosen.

    Attributes
    ----------
    name : str
        Output tensor name.
    rule : str
        ``"given"``, ``"only output"``, ``"first class-probability output"``,
        ``"first class-score output"``, ``"first float output"`` or ``"first output"``.
    available : list of str
        Every output the model declares, in order.
    """

    name: str
    rule: str
    available: list[str]

    def to_dict(self) -> dict:
        """The choice as a JSON-ready dict (``report.json``'s ``output``)."""
        return {"name": self.name, "rule": self.rule, "available": list(self.available)}


def output_names(model: onnx.ModelProto) -> list[str]:
    """Names of the model's declared outputs, in order."""
    return [value.name for value in model.graph.output]


def _float_tensor(value: onnx.ValueInfoProto) -> bool:
    return value.type.HasField("tensor_type") and value.type.tensor_type.elem_type in FLOAT_TYPES


def _rank(value: onnx.ValueInfoProto) -> int | None:
    tensor = value.type.tensor_type
    return len(tensor.shape.dim) if tensor.HasField("shape") else None


def _from_probabilities(name: str, producers: dict[str, onnx.NodeProto]) -> bool:
    node = producers.get(name)
    while node is not None and node.op_type in _LOOK_THROUGH and node.input:
        node = producers.get(node.input[0])
    return node is not None and node.op_type in _PROBABILITIES


def choose_output(model: onnx.ModelProto, name: str | None = None) -> OutputChoice:
    """The output to explain: ``name`` when given, else the documented default rule.

    Raises
    ------
    UnknownOutputError
        ``name`` is not a declared output; the message lists the available ones.
    """
    outputs = list(model.graph.output)
    available = [v.name for v in outputs]
    if name is not None:
        if name not in available:
            raise UnknownOutputError(name, available)
        return OutputChoice(name, "given", available)
    if len(outputs) == 1:
        return OutputChoice(available[0], "only output", available)
    producers = {out: node for node in model.graph.node for out in node.output}
    floats = [v for v in outputs if _float_tensor(v)]
    rules = (
        ("first class-probability output", [v for v in floats if _from_probabilities(v.name, producers)]),
        ("first class-score output", [v for v in floats if _rank(v) == 2]),
        ("first float output", floats),
        ("first output", outputs),
    )
    rule, found = next((rule, found) for rule, found in rules if found)
    return OutputChoice(found[0].name, rule, available)


def needed_nodes(model: onnx.ModelProto, name: str) -> list[int]:
    """Indices (in graph order) of the nodes whose results flow into output ``name``."""
    graph = model.graph
    producer = {out: k for k, node in enumerate(graph.node) for out in node.output if out}
    keep: set[int] = set()
    stack = [name]
    while stack:
        k = producer.get(stack.pop())
        if k is None or k in keep:
            continue
        keep.add(k)
        stack.extend(t for t in graph.node[k].input if t)
    return sorted(keep)


def select_output(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """A copy of ``model`` with output ``name`` only, and only the nodes, weights and inputs it needs.

    Metadata, opset imports and the output's declaration are kept; graph inputs the output
    does not read are dropped (all are kept when it reads none).

    Raises
    ------
    UnknownOutputError
        ``name`` is not a declared output.
    """
    if name not in output_names(model):
        raise UnknownOutputError(name, output_names(model))
    graph = model.graph
    nodes = [graph.node[k] for k in needed_nodes(model, name)]
    read = {t for node in nodes for t in node.input} | {name}
    pruned = onnx.ModelProto()
    copy_fields(model, pruned, frozenset({"graph"}))
    copy_fields(graph, pruned.graph, frozenset({"node", "initializer", "input", "output", "value_info"}))
    pruned.graph.node.extend(nodes)
    pruned.graph.initializer.extend(t for t in graph.initializer if t.name in read)
    initializers = {t.name for t in graph.initializer}
    reads_input = any(v.name in read for v in graph.input if v.name not in initializers)
    pruned.graph.input.extend(
        v for v in graph.input if v.name in read or (v.name not in initializers and not reads_input)
    )
    pruned.graph.output.extend(v for v in graph.output if v.name == name)
    pruned.graph.value_info.extend(v for v in graph.value_info if v.name in read)
    return pruned

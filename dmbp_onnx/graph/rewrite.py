"""Small graph-surgery helpers shared by the rewrite passes."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import onnx_graphsurgeon as gs
from onnx_graphsurgeon.logger import G_LOGGER


@contextmanager
def quiet_graphsurgeon() -> Iterator[None]:
    """Silence onnx-graphsurgeon's warnings (printed to stdout) inside the block."""
    severity = G_LOGGER.severity
    G_LOGGER.severity = G_LOGGER.ERROR
    try:
        yield
    finally:
        G_LOGGER.severity = severity


def is_graph_output(graph: gs.Graph, tensor: gs.Tensor) -> bool:
    """Whether ``tensor`` is one of the graph's outputs."""
    return any(t is tensor for t in graph.outputs)


def constant_values(tensor: gs.Tensor) -> np.ndarray | None:
    """The values of a constant tensor, or None for a variable (or an omitted optional input)."""
    if isinstance(tensor, gs.Constant):
        return np.asarray(tensor.values)
    return None


def static_shape(tensor: gs.Tensor) -> list[int] | None:
    """The tensor's shape when every dimension is a known integer, else None."""
    shape = tensor.shape
    if shape is None or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        return None
    return [int(d) for d in shape]


def private_producer(graph: gs.Graph, tensor: gs.Tensor, consumer: gs.Node) -> gs.Node | None:
    """The node producing ``tensor`` when ``consumer`` is its only reader and it is no graph output."""
    if isinstance(tensor, gs.Constant) or len(tensor.inputs) != 1 or is_graph_output(graph, tensor):
        return None
    if len(tensor.outputs) != 1 or tensor.outputs[0] is not consumer:
        return None
    if sum(1 for t in consumer.inputs if t is tensor) != 1:
        return None
    return tensor.inputs[0]


def bypass(graph: gs.Graph, node: gs.Node, src: gs.Tensor) -> bool:
    """Remove ``node`` whose first output equals ``src``; readers of that output read ``src``.

    When the output is a graph output its name is kept: the producer of ``src`` is made to
    write it instead (impossible, hence False, when ``src`` is a graph input, a constant or
    itself a graph output).
    """
    dst = node.outputs[0]
    if is_graph_output(graph, dst):
        if isinstance(src, gs.Constant) or len(src.inputs) != 1 or is_graph_output(graph, src):
            return False
        if any(t is src for t in graph.inputs):
            return False
        producer = src.inputs[0]
        node.outputs.clear()
        node.inputs.clear()
        for reader in list(src.outputs):
            for k, tensor in enumerate(reader.inputs):
                if tensor is src:
                    reader.inputs[k] = dst
        index = next(k for k, t in enumerate(producer.outputs) if t is src)
        dst.dtype = dst.dtype if dst.dtype is not None else src.dtype
        producer.outputs[index] = dst
        return True
    for reader in list(dst.outputs):
        for k, tensor in enumerate(reader.inputs):
            if tensor is dst:
                reader.inputs[k] = src
    node.outputs.clear()
    node.inputs.clear()
    return True

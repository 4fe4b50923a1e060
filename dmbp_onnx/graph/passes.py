"""Rewrite passes on onnx-graphsurgeon graphs.

(Minimal first version; the graph work package replaces it with the full pass set.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import onnx
import onnx_graphsurgeon as gs


@dataclass
class CleanGraph:
    """A cleaned graph ready for the twin builder.

    Attributes
    ----------
    graph : onnx_graphsurgeon.Graph
        The rewritten graph.
    opsets : dict of str to int
        Opset version imported per domain ("" is ai.onnx).
    passes_applied : list of str
        Names of the passes that changed the graph, in order.
    layout : str
        Layout of the first input: "NCHW", "NHWC", "NCW", "NWC" or "unknown".
    channel_axis : int or None
        Channel axis of the first input in the user's layout.
    output_activation : tuple of (str, int) or None
        ``("Softmax" | "LogSoftmax", axis)`` when a terminal activation was split off
        the (first) output, so the twin's output is the logits.
    """

    graph: gs.Graph
    opsets: dict[str, int]
    passes_applied: list[str] = field(default_factory=list)
    layout: str = "unknown"
    channel_axis: int | None = None
    output_activation: tuple[str, int] | None = None


def opsets_of(model: onnx.ModelProto) -> dict[str, int]:
    """Opset version per domain, "ai.onnx" normalised to ""."""
    opsets = {}
    for entry in model.opset_import:
        domain = "" if entry.domain in ("", "ai.onnx") else entry.domain
        opsets[domain] = int(entry.version)
    return opsets


def clean(model: onnx.ModelProto) -> CleanGraph:
    """Run every pass on ``model`` and return the cleaned graph."""
    graph = gs.import_onnx(model)
    graph.cleanup().toposort()
    rank = len(graph.inputs[0].shape or []) if graph.inputs else 0
    layout = {4: "NCHW", 3: "NCW"}.get(rank, "unknown")
    return CleanGraph(graph, opsets_of(model), [], layout, 1 if layout != "unknown" else None, None)

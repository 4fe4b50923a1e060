"""Bisect a mismatching twin to the first node of the cleaned graph that diverges.

Bisection exposes every intermediate tensor of the cleaned graph as an extra
onnxruntime output, runs the twin's GraphModule node by node, and feeds each node
onnxruntime's own values of its inputs, so every node is judged on identical inputs
and the first one (in topological order) out of tolerance is the culprit.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import onnx
import torch
from torch import fx

from dmbp_onnx.device import as_tensors, on_device, resolve_device, to_numpy
from dmbp_onnx.errors import DmbpOnnxError
from dmbp_onnx.runtime import make_session, run_session
from dmbp_onnx.twin.twin import Twin
from dmbp_onnx.validate.comparison import compare


class _ForcedInterpreter(fx.Interpreter):
    """Runs a GraphModule node by node, recording chosen values and replacing them by references."""

    def __init__(self, module: fx.GraphModule, references: dict[str, torch.Tensor]) -> None:
        super().__init__(module)
        self.references = references
        self.captured: dict[str, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        reference = self.references.get(n.name)
        if reference is None:
            return value
        self.captured[n.name] = value
        if isinstance(value, torch.Tensor) and value.shape == reference.shape:
            return reference.to(dtype=value.dtype)
        return value


def _exposed_model(twin: Twin) -> onnx.ModelProto:
    """The cleaned graph with every node output exposed as an extra graph output."""
    import onnx_graphsurgeon as gs

    graph = twin.clean_graph.graph.copy()
    declared = {t.name for t in graph.outputs}
    extra = [
        t
        for node in graph.nodes
        for t in node.outputs
        if t.name and t.name not in declared and isinstance(t, gs.Variable)
    ]
    graph.outputs = list(graph.outputs) + extra
    model = gs.export_onnx(graph, do_type_check=False)
    model.ir_version = max(4, min(int(twin.model.ir_version), 10))
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in twin.clean_graph.opsets.items())
    return model


def bisect(
    twin: Twin, arrays: Sequence[np.ndarray], rtol: float, atol: float, device: str = "auto"
) -> dict | None:
    """The first node of the cleaned graph whose output leaves tolerance on identical inputs.

    Parameters
    ----------
    twin : Twin
        The twin under test.
    arrays : sequence of numpy.ndarray
        One array per graph input, already checked.
    rtol, atol : float
        Tolerances, as in :func:`validate`.
    device : {"auto", "cpu", "cuda"}
        Where onnxruntime and the twin run.

    Returns
    -------
    dict or None
        ``node``, ``op``, ``tensor``, ``max_abs``, ``max_rel`` of the first diverging node,
        or None when every node agrees with onnxruntime.

    Raises
    ------
    UnsupportedModelError
        When onnxruntime cannot run the cleaned graph.
    """
    graph = twin.clean_graph.graph
    session = make_session(_exposed_model(twin), device)
    names = [o.name for o in session.get_outputs()]
    feeds = {t.name: a for t, a in zip(graph.inputs, arrays)}
    values = dict(zip(names, run_session(session, feeds, names)))
    torch_device = resolve_device(device)
    references = {}
    for name, value in values.items():
        fx_name = twin.tensor_nodes.get(name)
        if fx_name is not None and np.issubdtype(value.dtype, np.floating):
            references[fx_name] = torch.from_numpy(np.array(value)).to(torch_device)
    interpreter = _ForcedInterpreter(twin.module, references)
    with on_device(twin, torch_device):
        interpreter.run(*as_tensors(arrays, torch_device))
    for node in graph.nodes:
        for tensor in node.outputs:
            fx_name = twin.tensor_nodes.get(tensor.name)
            if fx_name not in references or not isinstance(interpreter.captured.get(fx_name), torch.Tensor):
                continue
            result = compare(to_numpy(interpreter.captured[fx_name]), values[tensor.name], rtol, atol)
            if not result["ok"]:
                return {
                    "node": node.name,
                    "op": node.op,
                    "tensor": tensor.name,
                    "max_abs": result["max_abs"],
                    "max_rel": result["max_rel"],
                }
    return None


def _describe(divergence: dict) -> str:
    return (
        f"node '{divergence['node']}' ({divergence['op']}): max abs {divergence['max_abs']:.3g} "
        f"(max rel {divergence['max_rel']:.3g}) on tensor '{divergence['tensor']}'"
    )


def _locate(
    twin: Twin, arrays: Sequence[np.ndarray], rtol: float, atol: float, device: str
) -> tuple[dict | None, str]:
    """Bisect and phrase the result as ``first_divergence``."""
    try:
        divergence = bisect(twin, arrays, rtol, atol, device)
    except DmbpOnnxError as exc:
        return None, f"bisection impossible: {exc}"
    if divergence is not None:
        return divergence, _describe(divergence)
    passes = ", ".join(twin.passes_applied) or "none"
    return None, (
        "no node of the cleaned graph diverges on identical inputs; the difference comes "
        f"from accumulated rounding or from the rewrite passes (applied: {passes})"
    )

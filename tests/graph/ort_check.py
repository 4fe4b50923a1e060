"""Run a model and a rewritten graph in onnxruntime and compare (graph side: no twin)."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from oracle import random_inputs, reference_outputs


def export(graph: gs.Graph) -> onnx.ModelProto:
    """The graph as a model onnxruntime accepts (IR version 10)."""
    model = gs.export_onnx(graph)
    model.ir_version = 10
    return model


def feeds_for(model: onnx.ModelProto, seed: int = 0, batch: int = 2) -> dict[str, np.ndarray]:
    """Seeded random inputs keyed by graph input name."""
    initializers = {t.name for t in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in initializers]
    return dict(zip(names, random_inputs(model, seed, batch)))


def assert_same_outputs(before: onnx.ModelProto, graph: gs.Graph, batch: int = 2, rtol=1e-5, atol=1e-5):
    """onnxruntime gives the same outputs (same names, values) before and after rewriting."""
    after = export(graph)
    assert [o.name for o in after.graph.output] == [o.name for o in before.graph.output]
    feeds = feeds_for(before, batch=batch)
    for k, (a, b) in enumerate(zip(reference_outputs(before, feeds), reference_outputs(after, feeds))):
        np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=f"output {k}")
    return after

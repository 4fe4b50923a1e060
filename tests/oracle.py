"""The one oracle helper every equivalence test goes through.

``check_twin`` builds the twin of a model and compares every declared output
with onnxruntime (or ``onnx.reference.ReferenceEvaluator`` where onnxruntime
cannot run the model, e.g. an opset revision it does not implement yet), and
optionally with outputs the source framework produced.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

import dmbp_onnx

RTOL, ATOL = 1e-4, 1e-5


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[onnx.ValueInfoProto],
    outputs: Sequence[onnx.ValueInfoProto],
    initializers: Sequence[onnx.TensorProto] = (),
    opset: int = 17,
) -> onnx.ModelProto:
    """A hand-built model with IR version 10 (onnxruntime rejects newer IRs)."""
    graph = helper.make_graph(list(nodes), "test", list(inputs), list(outputs), list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def float_input(name: str, shape: Sequence) -> onnx.ValueInfoProto:
    """A float32 graph input/output declaration."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def init(name: str, value: np.ndarray) -> onnx.TensorProto:
    """An initializer from a numpy array."""
    return onnx.numpy_helper.from_array(np.asarray(value), name)


def reference_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Outputs of onnxruntime (CPU), falling back to the ONNX reference evaluator."""
    import onnxruntime as ort

    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception:  # noqa: BLE001 - onnxruntime lacks this revision: use the spec's evaluator
        from onnx.reference import ReferenceEvaluator

        return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feeds)]
    return session.run(None, feeds)


def random_inputs(model: onnx.ModelProto, seed: int = 0, batch: int = 2) -> list[np.ndarray]:
    """Seeded standard-normal inputs for each graph input (dynamic dims -> ``batch``)."""
    rng = np.random.default_rng(seed)
    initializer_names = {t.name for t in model.graph.initializer}
    arrays = []
    for value in model.graph.input:
        if value.name in initializer_names:
            continue
        dims = [d.dim_value if d.HasField("dim_value") else batch for d in value.type.tensor_type.shape.dim]
        arrays.append(rng.standard_normal(dims).astype(np.float32))
    return arrays


def check_twin(
    model: onnx.ModelProto | bytes,
    inputs: Sequence[np.ndarray] | None = None,
    expected: Sequence[np.ndarray] | None = None,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> "dmbp_onnx.Twin":
    """Assert the twin of ``model`` equals onnxruntime (and ``expected`` if given).

    Returns the twin so tests can go on with it.
    """
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load_model_from_string(model)
    twin = dmbp_onnx.load(proto)
    arrays = list(inputs) if inputs is not None else random_inputs(proto)
    names = [v.name for v in proto.graph.input if v.name not in {t.name for t in proto.graph.initializer}]
    feeds = dict(zip(names, arrays))
    oracle = reference_outputs(proto, feeds)
    with torch.no_grad():
        got = [t.numpy() for t in twin.forward_declared(*[torch.from_numpy(a) for a in arrays])]
    assert len(got) == len(oracle), f"twin has {len(got)} outputs, onnxruntime {len(oracle)}"
    for k, (g, o) in enumerate(zip(got, oracle)):
        assert g.shape == o.shape, f"output {k}: twin shape {g.shape} vs onnxruntime {o.shape}"
        np.testing.assert_allclose(g, o, rtol=rtol, atol=atol, err_msg=f"output {k} vs onnxruntime")
    if expected is not None:
        for k, (g, e) in enumerate(zip(got, expected)):
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=f"output {k} vs source")
    return twin

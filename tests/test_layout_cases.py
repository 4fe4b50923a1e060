"""One layout decision, from the graph, carried to preprocessing and the maps (issue 12).

The two named cases are tf2onnx/Keras-style NHWC graphs built here: a rescaling ``Mul`` (and
``Add``) before the ``Transpose`` to channels first, and a 4-channel NHWC input; the shape
alone would guess both wrong.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from oracle import check_twin, float_input, init, make_model
from onnx import helper
from PIL import Image

import dmbp_onnx
from dmbp_onnx.cli import main
from dmbp_onnx.errors import LayoutError


def _nhwc_cnn(channels: int, rescale: bool, size: int = 8) -> onnx.ModelProto:
    """``x (N, H, W, C)`` [-> Mul 1/255 -> Add -1] -> Transpose -> Conv -> ReLU -> GAP -> Flatten -> Gemm."""
    rng = np.random.default_rng(channels)
    nodes, first = [], "x"
    inits = [init("w", rng.standard_normal((4, channels, 3, 3)).astype(np.float32)),
             init("fc", rng.standard_normal((3, 4)).astype(np.float32))]  # fmt: skip
    if rescale:
        inits += [init("scale", np.array(1 / 255, np.float32)), init("shift", np.array(-1.0, np.float32))]
        nodes += [helper.make_node("Mul", ["x", "scale"], ["scaled"], name="rescaling_mul"),
                  helper.make_node("Add", ["scaled", "shift"], ["shifted"], name="rescaling_add")]  # fmt: skip
        first = "shifted"
    nodes += [
        helper.make_node("Transpose", [first], ["nchw"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1),
    ]
    return make_model(nodes, [float_input("x", ["N", size, size, channels])], [float_input("y", ["N", 3])], inits)


def _pixel_map_matches_manual_channel_sum(twin, x: np.ndarray) -> None:
    attribution = dmbp_onnx.Gradient(twin).attribute(x, target=0)
    assert attribution.channel_axis == 3
    np.testing.assert_allclose(attribution.pixel_map(), attribution.signed.numpy().sum(3), rtol=1e-6)


def test_layout_keras_rescaling_before_transpose_is_nhwc():
    model = _nhwc_cnn(3, rescale=True, size=12)  # shape (N, 12, 12, 3): the shape agrees; the graph decides
    twin = check_twin(model)
    assert (twin.layout, twin.channel_axis) == ("NHWC", 3)
    assert "Transpose 'to_nchw'" in twin.clean_graph.layout_reason
    _pixel_map_matches_manual_channel_sum(twin, np.random.default_rng(0).standard_normal((2, 12, 12, 3), np.float32))


def test_layout_keras_rescaling_before_transpose_with_three_pixel_rows_is_nhwc():
    """(N, 3, 3, 3): the shape cannot tell; before, the Mul hid the Transpose and NCHW was assumed."""
    twin = check_twin(_nhwc_cnn(3, rescale=True, size=3))
    assert (twin.layout, twin.channel_axis) == ("NHWC", 3)


def test_layout_four_channel_nhwc_input():
    model = _nhwc_cnn(4, rescale=False)  # (N, 8, 8, 4): no 1- or 3-channel axis; the shape guess said NCHW
    twin = check_twin(model)
    assert (twin.layout, twin.channel_axis) == ("NHWC", 3)
    _pixel_map_matches_manual_channel_sum(twin, np.random.default_rng(1).standard_normal((1, 8, 8, 4), np.float32))


def test_layout_four_channel_nhwc_explain_npy_reports_the_graph_layout(tmp_path):
    path, array = tmp_path / "rgba.onnx", tmp_path / "x.npy"
    onnx.save(_nhwc_cnn(4, rescale=False), str(path))
    np.save(array, np.random.default_rng(2).standard_normal((8, 8, 4)).astype(np.float32))
    out = tmp_path / "out"
    assert main(["explain", str(path), "--input-npy", str(array), "--method", "gradient", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["layout"] == "NHWC" and report["preprocess"]["layout"] == "NHWC"
    assert report["model"]["layout_reason"].startswith("graph: Transpose")


def _ambiguous() -> onnx.ModelProto:
    """(N, 8, 8, 8) read only through Flatten -> Gemm: neither the graph nor the shape tells."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1)]  # fmt: skip
    return make_model(nodes, [float_input("x", ["N", 8, 8, 8])], [float_input("y", ["N", 2])],
                      [init("fc", rng.standard_normal((2, 512)).astype(np.float32))])  # fmt: skip


def test_layout_ambiguous_asks_for_layout(tmp_path):
    path = tmp_path / "flat.onnx"
    onnx.save(_ambiguous(), str(path))
    twin = dmbp_onnx.load(path)
    assert twin.layout == "unknown" and twin.clean_graph.layout_reason.startswith("ambiguous")
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    from dmbp_onnx.explain import ExplainRequest, explain

    with pytest.raises(LayoutError, match="--layout"):
        explain(ExplainRequest(model=path, images=[image], methods=["gradient"], out=tmp_path / "o"))
    assert dmbp_onnx.load(path, layout="NHWC").channel_axis == 3


def test_layout_override_must_fit_the_input_rank():
    with pytest.raises(LayoutError, match="rank-4"):
        dmbp_onnx.load(_nhwc_cnn(3, rescale=False), layout="NCW")


def test_layout_graph_reading_the_input_both_ways_is_ambiguous():
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Transpose", ["x"], ["t"], name="t", perm=[0, 3, 1, 2]),
             helper.make_node("ReduceSum", ["c"], ["y"], name="sum", keepdims=0),
             helper.make_node("ReduceSum", ["t"], ["z"], name="sum2", keepdims=0)]  # fmt: skip
    model = make_model(nodes, [float_input("x", [1, 3, 3, 3])], [float_input("y", []), float_input("z", [])],
                       [init("w", rng.standard_normal((2, 3, 1, 1)).astype(np.float32))])  # fmt: skip
    twin = dmbp_onnx.load(model)
    assert twin.layout == "unknown" and "both ways" in twin.clean_graph.layout_reason

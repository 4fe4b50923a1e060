"""Loading well-formed models: paths, bytes, stale annotations, external data, functions.

Hostile files are in tests/hostile.
"""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dmbp_onnx.errors import ExternalDataError
from dmbp_onnx.graph.load import load_model
from oracle import float_input, init, make_model, reference_outputs
from ort_check import feeds_for


def _conv_relu():
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    inits = [init("w", rng.standard_normal((8, 3, 3, 3)).astype(np.float32)), init("b", np.ones(8, np.float32))]
    return make_model(nodes, [float_input("x", ["N", 3, 6, 6])], [float_input("y", ["N", 8, 6, 6])], inits)


def test_path_and_bytes_give_the_same_checked_model(tmp_path):
    model = _conv_relu()
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    from_path, from_bytes = load_model(path), load_model(model.SerializeToString())
    assert from_path == from_bytes and load_model(str(path)) == from_path
    inferred = {v.name: v for v in from_path.graph.value_info}
    assert [d.dim_value for d in inferred["c"].type.tensor_type.shape.dim][1:] == [8, 6, 6]


def test_stale_shape_annotations_are_replaced_not_refused():
    model = _conv_relu()
    model.graph.value_info.append(float_input("c", [7, 2, 2]))  # wrong rank and sizes, as exporters leave
    del model.graph.output[:]
    model.graph.output.append(float_input("y", [1, 1000]))
    loaded = load_model(model.SerializeToString())
    (c,) = [v for v in loaded.graph.value_info if v.name == "c"]
    assert len(c.type.tensor_type.shape.dim) == 4
    feeds = feeds_for(_conv_relu())
    np.testing.assert_array_equal(reference_outputs(loaded, feeds)[0], reference_outputs(_conv_relu(), feeds)[0])


def test_external_data_inside_the_folder_is_read(tmp_path):
    model = _conv_relu()
    (tmp_path / "weights").mkdir()
    onnx.save_model(model, tmp_path / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights/m.data", size_threshold=0)  # fmt: skip
    assert (tmp_path / "weights" / "m.data").stat().st_size == (8 * 27 + 8) * 4
    loaded = load_model(tmp_path / "m.onnx")
    weights = {t.name: numpy_helper.to_array(t) for t in loaded.graph.initializer}
    expected = {t.name: numpy_helper.to_array(t) for t in _conv_relu().graph.initializer}
    assert weights.keys() == expected.keys()
    for name in weights:
        np.testing.assert_array_equal(weights[name], expected[name])
    assert all(t.data_location == TensorProto.DEFAULT for t in loaded.graph.initializer)
    with pytest.raises(ExternalDataError, match="more than the limit"):
        load_model(tmp_path / "m.onnx", max_bytes=(tmp_path / "m.onnx").stat().st_size + 100)


def test_local_functions_are_inlined():
    body = helper.make_function(
        "local", "Block", ["a"], ["b"],
        [helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Neg", ["r"], ["b"])],
        opset_imports=[helper.make_opsetid("", 17)],
    )  # fmt: skip
    model = make_model([helper.make_node("Block", ["x"], ["y"], name="block", domain="local")],
                       [float_input("x", [2, 3])], [float_input("y", [2, 3])])  # fmt: skip
    model.opset_import.append(helper.make_opsetid("local", 1))
    model.functions.append(body)
    loaded = load_model(model.SerializeToString())
    assert [n.op_type for n in loaded.graph.node] == ["Relu", "Neg"]
    assert not loaded.functions


def test_duplicate_node_names_load_as_onnxruntime_runs_them():
    model = _conv_relu()
    model.graph.node[1].name = "conv"
    loaded = load_model(model.SerializeToString())
    assert [n.name for n in loaded.graph.node] == ["conv", "conv"]

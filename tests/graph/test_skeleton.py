"""The weightless copy that onnx's checker and shape inference run on, and what load keeps of it."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dmbp_onnx.errors import ModelLoadError
from dmbp_onnx.graph.load import load_model
from dmbp_onnx.graph.skeleton import STRIP_BYTES, weightless
from oracle import float_input, init, make_model

BIG = STRIP_BYTES // 4  # float32 elements in the smallest stripped tensor


def _mlp(fc_weight: np.ndarray | None = None) -> onnx.ModelProto:
    """Gemm with a large weight, then a Reshape whose shape is a small int64 initializer."""
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((BIG // 8, 8)).astype(np.float32) if fc_weight is None else fc_weight
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["y"], name="reshape"),
    ]
    inits = [init("w", weight), init("b", np.ones(weight.shape[0], np.float32)),
             init("shape", np.array([-1, 4, weight.shape[0] // 4], np.int64))]  # fmt: skip
    return make_model(nodes, [float_input("x", [2, 8])], [float_input("y", ["a", "b", "c"])], inits)


def test_large_float_weights_become_typed_inputs_and_the_rest_is_kept():
    model = _mlp()
    copy = weightless(model)
    assert copy.stripped == ["w"]
    assert [t.name for t in copy.model.graph.initializer] == ["b", "shape"]
    (added,) = [v for v in copy.model.graph.input if v.name == "w"]
    assert added.type.tensor_type.elem_type == TensorProto.FLOAT
    assert [d.dim_value for d in added.type.tensor_type.shape.dim] == [BIG // 8, 8]
    assert copy.model.ByteSize() < STRIP_BYTES < model.ByteSize() == copy.full_size
    assert list(copy.model.graph.node) == list(model.graph.node)
    onnx.checker.check_model(copy.model, full_check=True)


def test_full_size_counts_large_varints_without_serialising():
    model = _mlp(np.zeros((4096, 64), np.float32))  # 1 MiB: three-byte length prefixes
    model.graph.initializer[0].doc_string = "fc weight"
    model.graph.doc_string = "x" * 300
    assert weightless(model).full_size == model.ByteSize()


def test_an_initializer_also_declared_as_input_is_stripped_only_if_the_declaration_matches():
    model = _mlp()
    model.graph.input.append(float_input("w", [BIG // 8, 8]))
    copy = weightless(model)
    assert copy.stripped == ["w"] and [v.name for v in copy.model.graph.input] == ["x", "w"]
    model.graph.input[1].CopyFrom(float_input("w", ["N", 8]))  # onnx checks this against the weight
    assert weightless(model).stripped == []


def test_small_integer_and_typed_field_tensors_are_not_stripped():
    model = _mlp()
    model.ir_version = 3  # before IR 4, an initializer must also be a graph input
    assert weightless(model).stripped == []
    model = _mlp()
    weight = model.graph.initializer[0]
    values = numpy_helper.to_array(weight).reshape(-1).tolist()
    weight.ClearField("raw_data")
    weight.float_data.extend(values)
    assert weightless(model).stripped == []


def test_load_infers_what_full_shape_inference_infers_and_keeps_the_weights():
    model = _mlp()
    expected = onnx.shape_inference.infer_shapes(model, data_prop=True)
    loaded = load_model(model.SerializeToString())
    assert list(loaded.graph.value_info) == list(expected.graph.value_info)
    assert list(loaded.graph.initializer) == list(model.graph.initializer)
    assert list(loaded.graph.output) == list(expected.graph.output)
    (y,) = loaded.graph.output  # the Reshape shape, a small int64 initializer, was propagated
    assert [d.dim_value for d in y.type.tensor_type.shape.dim] == [2, 4, BIG // 32]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_large_weights_are_still_refused(bad):
    weight = np.ones((BIG // 8, 8), np.float32)
    weight[3, 5] = bad
    with pytest.raises(ModelLoadError, match="initializer 'w' holds 1 non-finite"):
        load_model(_mlp(weight).SerializeToString())


def test_checker_errors_are_still_raised_with_weights_stripped():
    model = _mlp()
    model.graph.node[0].attribute.append(helper.make_attribute("transA", 7))  # not 0 or 1: still an int
    model.graph.node[0].attribute.append(helper.make_attribute("alpha", "text"))  # wrong attribute type
    with pytest.raises(ModelLoadError, match="onnx checker"):
        load_model(model.SerializeToString())

"""graph.specs: the one reader of what a model declares of its inputs and outputs."""

import numpy as np
from onnx import TensorProto, helper

import dmbp_onnx
from dmbp_onnx.graph.specs import TensorSpec, declared_inputs, declared_shape, value_spec
from dmbp_onnx.preprocess import PreprocessConfig


def _model(x_shape, x_type=TensorProto.FLOAT):
    x = helper.make_tensor_value_info("x", x_type, x_shape)
    y = helper.make_tensor_value_info("y", x_type, x_shape)
    w = helper.make_tensor("w", x_type, [1], [1.0])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y], [w])
    graph.input.append(helper.make_tensor_value_info("w", x_type, [1]))  # an initializer listed as input
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_dims_are_ints_names_or_none():
    model = _model(["N", 3, None, 8])
    assert declared_shape(model.graph.input[0]) == ("N", 3, None, 8)
    assert declared_inputs(model) == [TensorSpec("x", ("N", 3, None, 8), np.dtype("float32"))]


def test_no_declared_shape_is_none_not_a_scalar():
    model = _model(None)
    assert declared_shape(model.graph.input[0]) is None
    assert declared_inputs(model)[0].shape is None
    assert declared_shape(_model([]).graph.input[0]) == ()


def test_a_type_numpy_cannot_name_has_no_dtype():
    value = helper.make_tensor_value_info("x", TensorProto.UNDEFINED, [2])
    assert value_spec(value) == TensorSpec("x", (2,), None)


def test_the_twin_inspect_and_preprocessing_read_the_same_declaration():
    model = _model(["N", 3, 16, 16])
    twin = dmbp_onnx.load(model)
    assert twin.inputs == declared_inputs(model)
    assert isinstance(twin.outputs[0], TensorSpec)
    assert PreprocessConfig.from_model(model).layout == "NCHW"

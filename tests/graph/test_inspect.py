"""Eligibility (piecewise linearity) and the inspection summary."""

import json

import numpy as np
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, helper

from dmbp_onnx.graph.inspect import inspect_model, offending_nodes
from dmbp_onnx.graph.passes import clean
from oracle import float_input, init, make_model

W = init("w", np.ones((4, 3, 1, 1), np.float32))
K = init("k", np.float32(0.5))
X = float_input("x", ["N", 3, 4, 4])


def _offending(nodes, inits=(W, K), outputs=None, out_name="y"):
    model = make_model(nodes, [X], [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, None)], list(inits))
    return offending_nodes(gs.import_onnx(model), outputs)


def test_relu_cnn_is_eligible_and_terminal_softmax_is_ignored():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("LeakyRelu", ["c"], ["r"], name="act"),
        helper.make_node("Mul", ["r", "k"], ["m"], name="scale"),
        helper.make_node("Div", ["m", "k"], ["d"], name="div"),
        helper.make_node("MaxPool", ["d"], ["p"], name="pool", kernel_shape=[2, 2]),
        helper.make_node("Add", ["p", "p"], ["a"], name="residual"),
        helper.make_node("ReduceMean", ["a"], ["g"], name="gap", axes=[2, 3]),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Softmax", ["f"], ["y"], name="softmax"),
    ]
    assert _offending(nodes) == []


@pytest.mark.parametrize(
    "node, offending",
    [
        (helper.make_node("Sigmoid", ["c"], ["y"], name="n"), [("n", "Sigmoid")]),
        (helper.make_node("HardSwish", ["c"], ["y"], name="n"), [("n", "HardSwish")]),
        (helper.make_node("Mul", ["c", "c"], ["y"], name="n"), [("n", "Mul")]),
        (helper.make_node("Div", ["k", "c"], ["y"], name="n"), [("n", "Div")]),
        (helper.make_node("Cast", ["c"], ["y"], name="n", to=TensorProto.INT32), [("n", "Cast")]),
        (helper.make_node("Cast", ["c"], ["y"], name="n", to=TensorProto.DOUBLE), []),
        (helper.make_node("CastLike", ["c", "i"], ["y"], name="n"), [("n", "CastLike")]),
        (helper.make_node("CastLike", ["c", "d"], ["y"], name="n"), []),
        (helper.make_node("Expand", ["c", "e"], ["y"], name="n"), []),
        (helper.make_node("Relu", ["c"], ["y"], name="n"), []),
        (helper.make_node("MatMul", ["m", "c"], ["y"], name="n"), []),
        (helper.make_node("Gemm", ["c", "c"], ["y"], name="n"), [("n", "Gemm")]),
    ],
    ids=["sigmoid", "hardswish", "square", "reciprocal", "cast-int", "cast-double", "castlike-int", "castlike-double",
         "expand", "relu", "const-matmul", "gram"],
)
def test_single_node_after_conv(node, offending):
    inits = (W, K, init("m", np.ones((4, 4), np.float32)), init("i", np.int32(0)), init("d", np.float64(0)),
             init("e", np.array([2, 4, 4, 4], np.int64)))
    assert _offending([helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), node], inits) == offending


def test_cast_like_reads_only_the_type_of_its_second_input():
    # the dynamo exporter casts constants to the type of a data tensor, then multiplies by them
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("CastLike", ["k", "c"], ["kc"], name="k_like_c"),
        helper.make_node("Mul", ["c", "kc"], ["y"], name="scale"),
    ]
    assert _offending(nodes) == []


def test_matmul_of_two_data_tensors_and_inner_softmax_are_offending():
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="tokens"),
        helper.make_node("Transpose", ["r"], ["rt"], name="t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["r", "rt"], ["att"], name="qk"),
        helper.make_node("Softmax", ["att"], ["s"], name="attn_softmax"),
        helper.make_node("MatMul", ["s", "r"], ["y"], name="av"),
    ]
    shape = init("shape", np.array([0, 3, 16], np.int64))
    assert _offending(nodes, [shape]) == [("qk", "MatMul"), ("attn_softmax", "Softmax"), ("av", "MatMul")]


def test_shape_only_subgraph_and_other_outputs_are_ignored():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Shape", ["c"], ["s"], name="shape"),
        helper.make_node("Cast", ["s"], ["sf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Sqrt", ["sf"], ["sq"], name="sqrt"),
        helper.make_node("Cast", ["sq"], ["si"], name="back", to=TensorProto.INT64),
        helper.make_node("Reshape", ["c", "si"], ["y"], name="reshape"),
        helper.make_node("Tanh", ["c"], ["side"], name="tanh"),
    ]
    side = helper.make_tensor_value_info("side", TensorProto.FLOAT, None)
    model = make_model(nodes, [X], [float_input("y", ["N", 4, 4, 4]), side], [W])
    graph = gs.import_onnx(model)
    assert offending_nodes(graph, ["y"]) == []
    assert offending_nodes(graph) == [("tanh", "Tanh")]
    with pytest.raises(KeyError, match="nope"):
        offending_nodes(graph, ["nope"])


def test_softmax_feeding_another_target_is_not_terminal():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Softmax", ["c"], ["probs"], name="softmax", axis=1),
        helper.make_node("Add", ["probs", "probs"], ["y"], name="double"),
    ]
    model = make_model(nodes, [X], [float_input("probs", ["N", 4, 4, 4]), float_input("y", ["N", 4, 4, 4])], [W])
    graph = gs.import_onnx(model)
    assert offending_nodes(graph, ["probs"]) == []
    assert offending_nodes(graph) == [("softmax", "Softmax")]


def test_inspect_model_is_json_serialisable_and_complete():
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["c"], name="conv"),
        helper.make_node("Identity", ["c"], ["i"], name="id"),
        helper.make_node("Sigmoid", ["i"], ["s"], name="gate"),
        helper.make_node("Flatten", ["s"], ["f"], name="flat"),
        helper.make_node("Softmax", ["f"], ["y"], name="softmax"),
    ]
    model = make_model(nodes, [float_input("x", ["N", 4, 4, 3])], [float_input("y", ["N", 64])], [W])
    model.producer_name, model.producer_version = "tf2onnx", "1.16"
    report = json.loads(json.dumps(inspect_model(model, clean(model))))
    assert report["opsets"] == {"": 17} and report["ir_version"] == 10
    assert report["producer"] == {"name": "tf2onnx", "version": "1.16"}
    assert report["inputs"] == [
        {"name": "x", "shape": ["N", 4, 4, 3], "dtype": "FLOAT", "layout": "NHWC", "channel_axis": 3}
    ]
    assert report["outputs"] == [{"name": "y", "shape": ["N", 64], "dtype": "FLOAT"}]
    assert report["ops"]["Identity"] == 1 and "Identity" not in report["ops_clean"]
    assert "Softmax" not in report["ops_clean"]
    assert report["passes_applied"] == ["remove_noops", "split_terminal_softmax"]
    assert report["output_activation"] == ["Softmax", 1]
    assert report["eligibility"] == {"eligible": False, "offending": [{"node": "gate", "op": "Sigmoid"}]}

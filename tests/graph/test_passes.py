"""Each rewrite pass alone: the graph changes as expected and onnxruntime outputs do not."""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, helper, numpy_helper

from dmbp_onnx.graph import passes
from dmbp_onnx.graph.layout import decide_layout
from oracle import float_input, init, make_model, reference_outputs
from ort_check import assert_same_outputs, export, feeds_for

RNG = np.random.default_rng(0)


def _w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _graph(model):
    return gs.import_onnx(onnx.shape_inference.infer_shapes(model))


def _ops(graph):
    return [n.op for n in graph.nodes]


def _conv(out="c", bias=True, name="conv"):
    inputs = ["x", "w"] + (["b"] if bias else [])
    return helper.make_node("Conv", inputs, [out], name=name, pads=[1, 1, 1, 1])


def _conv_inits(bias=True):
    return [init("w", _w(4, 3, 3, 3))] + ([init("b", _w(4))] if bias else [])


X = float_input("x", ["N", 3, 5, 5])
_ANY_Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
Y = float_input("y", ["N", 4, 5, 5])


def test_fold_constants_lifts_constant_nodes_and_transposed_weights():
    kernel = _w(3, 3, 3, 4)  # HWIO as Keras/JAX keep it
    nodes = [
        helper.make_node("Constant", [], ["k"], name="kernel", value=numpy_helper.from_array(kernel)),
        helper.make_node("Transpose", ["k"], ["w"], name="to_oihw", perm=[3, 2, 0, 1]),
        helper.make_node("Constant", [], ["b"], name="bias", value=numpy_helper.from_array(_w(4))),
        _conv("y"),
    ]
    model = make_model(nodes, [X], [Y])
    graph = _graph(model)
    assert passes.fold_constants(graph)
    assert _ops(graph) == ["Conv"]
    assert graph.nodes[0].name == "conv" and isinstance(graph.nodes[0].inputs[1], gs.Constant)
    assert_same_outputs(model, graph)
    assert not passes.fold_constants(graph)


def test_fold_constants_never_bakes_in_a_dynamic_batch():
    nodes = [  # tf2onnx-style flatten: Shape/Gather/Unsqueeze/Concat/Reshape
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["shape2"], name="cat", axis=0),
        helper.make_node("Reshape", ["x", "shape2"], ["f"], name="flatten"),
        helper.make_node("Reshape", ["wflat", "wshape"], ["w"], name="reshape_w"),
        helper.make_node("MatMul", ["f", "w"], ["y"], name="dense"),
    ]
    inits = [
        init("zero", np.array(0, np.int64)),
        init("axes", np.array([0], np.int64)),
        init("minus1", np.array([-1], np.int64)),
        init("wflat", _w(75 * 2)),
        init("wshape", np.array([75, 2], np.int64)),
    ]
    model = make_model(nodes, [X], [float_input("y", ["N", 2])], inits)
    graph = _graph(model)
    assert passes.fold_constants(graph)
    assert "Shape" in _ops(graph) and "reshape_w" not in [n.name for n in graph.nodes]
    for batch in (1, 3):
        assert_same_outputs(model, graph, batch=batch)


def test_fold_batchnorm_into_conv():
    stats = [init("g", _w(4)), init("beta", _w(4)), init("mean", _w(4)), init("var", np.abs(_w(4)) + 0.1)]
    nodes = [
        _conv(bias=False),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["y"], name="bn", epsilon=1e-3),
    ]
    model = make_model(nodes, [X], [Y], _conv_inits(bias=False) + stats)
    graph = _graph(model)
    assert passes.fold_batchnorm_into_conv(graph)
    assert _ops(graph) == ["Conv"] and graph.outputs[0].name == "y"
    assert graph.nodes[0].name == "conv" and len(graph.nodes[0].inputs) == 3
    assert_same_outputs(model, graph)


def test_batchnorm_stays_when_the_conv_output_is_shared():
    stats = [init("g", _w(4)), init("beta", _w(4)), init("mean", _w(4)), init("var", np.abs(_w(4)) + 0.1)]
    nodes = [
        _conv(),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["bn_out"], name="bn"),
        helper.make_node("Add", ["c", "bn_out"], ["y"], name="add"),
    ]
    model = make_model(nodes, [X], [Y], _conv_inits() + stats)
    graph = _graph(model)
    assert not passes.fold_batchnorm_into_conv(graph)
    assert "BatchNormalization" in _ops(graph)


def _chan(values):
    return np.asarray(values, np.float32).reshape(4, 1, 1)


def test_fold_affine_keras3_batchnorm_and_separate_bias():
    nodes = [  # Paddle: bias as separate Add; Keras 3: BN as Sub/Mul/Add, then a Div
        _conv(bias=False),
        helper.make_node("Add", ["c", "bias"], ["c1"], name="bias_add"),
        helper.make_node("Sub", ["c1", "mean"], ["c2"], name="bn_sub"),
        helper.make_node("Mul", ["scale", "c2"], ["c3"], name="bn_mul"),
        helper.make_node("Add", ["c3", "shift"], ["c4"], name="bn_add"),
        helper.make_node("Div", ["c4", "div"], ["y"], name="div"),
    ]
    inits = _conv_inits(bias=False) + [
        init("bias", _w(1, 4, 1, 1)),
        init("mean", _chan(_w(4))),
        init("scale", _chan(_w(4))),
        init("shift", np.array(0.5, np.float32)),
        init("div", _chan(np.abs(_w(4)) + 0.5)),
    ]
    model = make_model(nodes, [X], [Y], inits)
    graph = _graph(model)
    assert passes.fold_affine_into_conv(graph)
    assert _ops(graph) == ["Conv"] and graph.outputs[0].name == "y" and graph.nodes[0].name == "conv"
    assert_same_outputs(model, graph)


def test_fold_affine_behind_keras3_layout_transpose():
    nodes = [
        _conv(),
        helper.make_node("Transpose", ["c"], ["t"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Add", ["t", "bias"], ["a"], name="bias_add"),
        helper.make_node("Mul", ["a", "scale"], ["m"], name="bn_mul"),
        helper.make_node("Add", ["m", "h_only"], ["y"], name="not_per_channel"),
    ]
    inits = _conv_inits() + [init("bias", _w(1, 1, 1, 4)), init("scale", _w(4)), init("h_only", _w(5, 1, 1))]
    model = make_model(nodes, [X], [float_input("y", ["N", 5, 5, 4])], inits)
    graph = _graph(model)
    assert passes.fold_affine_into_conv(graph)
    assert _ops(graph) == ["Conv", "Transpose", "Add"] and graph.nodes[2].name == "not_per_channel"
    assert_same_outputs(model, graph)


def test_fold_affine_keeps_a_graph_output_name():
    nodes = [_conv(), helper.make_node("Mul", ["c", "k"], ["y"], name="scale")]
    model = make_model(nodes, [X], [Y], _conv_inits() + [init("k", _chan(_w(4)))])
    graph = _graph(model)
    assert passes.fold_affine_into_conv(graph)
    assert _ops(graph) == ["Conv"] and graph.nodes[0].outputs[0].name == "y"
    assert_same_outputs(model, graph)


def test_fold_affine_constant_minus_conv():
    nodes = [_conv(), helper.make_node("Sub", ["k", "c"], ["y"], name="rsub")]
    model = make_model(nodes, [X], [Y], _conv_inits() + [init("k", _chan(_w(4)))])
    graph = _graph(model)
    assert passes.fold_affine_into_conv(graph)
    assert _ops(graph) == ["Conv"]
    assert_same_outputs(model, graph)


@pytest.mark.parametrize(
    "shape, op",
    [((4,), "Mul"), ((1, 4, 5, 1), "Add"), ((4, 1, 1), "Div"), ((2, 1, 4, 1, 1), "Mul")],
    ids=["per-width", "not-per-channel", "divide-by-zero", "rank-growing"],
)
def test_fold_affine_refuses_what_is_not_per_channel(shape, op):
    value = np.zeros(shape, np.float32) if op == "Div" else _w(*shape)
    nodes = [_conv(), helper.make_node(op, ["c", "k"], ["y"], name="op")]
    model = make_model(nodes, [X], [_ANY_Y], _conv_inits() + [init("k", value)])
    graph = _graph(model)
    assert not passes.fold_affine_into_conv(graph)
    assert _ops(graph) == ["Conv", op]


def test_remove_noops():
    nodes = [
        helper.make_node("Identity", ["x"], ["i"], name="id"),
        helper.make_node("Dropout", ["i"], ["d"], name="drop"),
        helper.make_node("Cast", ["d"], ["cst"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["cst", "same"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["t1"], name="to_nhwc", perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["t1"], ["t2"], name="to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Relu", ["t2"], ["relu"], name="relu"),
        helper.make_node("Identity", ["relu"], ["y"], name="id_out"),
    ]
    x = float_input("x", [2, 3, 5, 5])
    same = init("same", np.array([2, 3, 5, 5], np.int64))
    model = make_model(nodes, [x], [float_input("y", [2, 3, 5, 5])], [same])
    graph = _graph(model)
    assert passes.remove_noops(graph)
    assert _ops(graph) == ["Relu"] and graph.outputs[0].name == "y" and graph.nodes[0].name == "relu"
    assert_same_outputs(model, graph)


def test_remove_noops_keeps_real_casts_and_reshapes():
    nodes = [
        helper.make_node("Cast", ["x"], ["h"], name="to_half", to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["h"], ["f"], name="to_float", to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["f", "flat"], ["y"], name="flatten"),
    ]
    model = make_model(nodes, [float_input("x", [2, 3, 5, 5])], [float_input("y", [2, 75])],
                       [init("flat", np.array([2, 75], np.int64))])  # fmt: skip
    graph = _graph(model)
    assert not passes.remove_noops(graph)
    assert _ops(graph) == ["Cast", "Cast", "Reshape"]


def test_remove_noops_drops_cast_like_to_the_same_type_only():
    # the dynamo exporter's CastLike(constant, x): once gone, the Expand of the constant folds too
    nodes = [
        helper.make_node("CastLike", ["k", "x"], ["kx"], name="same_type"),
        helper.make_node("Add", ["x", "kx"], ["a"], name="add"),
        helper.make_node("CastLike", ["a", "half"], ["h"], name="to_half"),
        helper.make_node("Cast", ["h"], ["y"], name="back", to=TensorProto.FLOAT),
    ]
    inits = [init("k", np.float32(1.5)), init("half", np.float16(0))]
    model = make_model(nodes, [float_input("x", [2, 3])], [float_input("y", [2, 3])], inits, opset=21)
    graph = _graph(model)
    assert passes.remove_noops(graph)
    assert _ops(graph) == ["Add", "CastLike", "Cast"]
    assert_same_outputs(model, graph)


def test_remove_noops_keeps_dropout_that_may_train():
    nodes = [
        helper.make_node("Dropout", ["x", "ratio", "on"], ["d"], name="train_drop"),
        helper.make_node("Dropout", ["d", "ratio", "mode"], ["y"], name="runtime_drop"),
    ]
    mode = helper.make_tensor_value_info("mode", TensorProto.BOOL, [])
    model = make_model(nodes, [float_input("x", [2, 3]), mode], [float_input("y", [2, 3])],
                       [init("ratio", np.float32(0.5)), init("on", np.array(True))])  # fmt: skip
    graph = _graph(model)
    assert not passes.remove_noops(graph)
    assert _ops(graph) == ["Dropout", "Dropout"]


@pytest.mark.parametrize(
    "op, opset, shape, axis, expected",
    [
        ("Softmax", 17, ["N", 10], -1, 1),
        ("LogSoftmax", 13, ["N", 4, 3], 1, 1),
        ("Softmax", 11, ["N", 10], 1, 1),
        ("Softmax", 11, ["N", 10, 1, 1], 1, 1),
        ("Softmax", 11, ["N", 4, 3], 1, None),
        ("Softmax", 11, ["N", 10], 0, None),
    ],
)
def test_split_terminal_softmax(op, opset, shape, axis, expected):
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["logits"], name="scale"),
        helper.make_node(op, ["logits"], ["probs"], name="softmax", axis=axis),
    ]
    model = make_model(nodes, [float_input("x", shape)], [float_input("probs", shape)],
                       [init("k", np.float32(2.0))], opset=opset)  # fmt: skip
    graph = _graph(model)
    found = passes.terminal_softmax(graph)
    assert (found[1] if found else None) == expected
    assert passes.split_terminal_softmax(graph) == (expected is not None)
    if expected is None:
        assert _ops(graph) == ["Mul", op]
        return
    assert _ops(graph) == ["Mul"] and graph.outputs[0].name == "probs"
    feeds = feeds_for(model)
    (probs,) = reference_outputs(model, feeds)
    (logits,) = reference_outputs(export(graph), feeds)
    shifted = np.exp(logits - logits.max(axis=expected, keepdims=True))
    softmax = shifted / shifted.sum(axis=expected, keepdims=True)
    np.testing.assert_allclose(np.log(softmax) if op == "LogSoftmax" else softmax, probs, rtol=1e-5, atol=1e-6)


def test_softmax_read_by_another_node_is_not_split():
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["logits"], name="scale"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax"),
        helper.make_node("ArgMax", ["probs"], ["label"], name="argmax", axis=1),
    ]
    label = helper.make_tensor_value_info("label", TensorProto.INT64, None)
    model = make_model(nodes, [float_input("x", ["N", 10])], [float_input("probs", ["N", 10]), label],
                       [init("k", np.float32(2.0))])  # fmt: skip
    graph = _graph(model)
    assert not passes.split_terminal_softmax(graph)
    assert _ops(graph) == ["Mul", "Softmax", "ArgMax"]


@pytest.mark.parametrize(
    "shape, perm, expected",
    [
        ([1, 8, 8, 3], [0, 3, 1, 2], ("NHWC", 3)),
        ([1, 3, 8, 8], None, ("NCHW", 1)),
        ([1, 16, 3], [0, 2, 1], ("NWC", 2)),
        ([1, 3, 16], None, ("NCW", 1)),
        ([1, 10], None, ("unknown", None)),
    ],
)
def test_input_layout(shape, perm, expected):
    first = helper.make_node("Transpose", ["x"], ["t"], name="t", perm=perm) if perm else helper.make_node(
        "Identity", ["x"], ["t"], name="t"
    )
    model = make_model([first, helper.make_node("Relu", ["t"], ["y"], name="relu")],
                       [float_input("x", shape)], [_ANY_Y])  # fmt: skip
    decision = decide_layout(_graph(model))
    assert (decision.layout, decision.channel_axis) == expected


def test_clean_runs_every_pass_names_nodes_and_keeps_layout_transpose():
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Identity", ["t"], ["i"]),
        helper.make_node("Conv", ["i", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Mul", ["c", "s"], ["m"], name="bn_mul"),
        helper.make_node("Relu", ["m"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fc"], ["z"], name="fc", transB=1),
        helper.make_node("Softmax", ["z"], ["probs"], name="softmax"),
    ]
    inits = [init("w", _w(4, 3, 3, 3)), init("s", _chan(_w(4))), init("fc", _w(5, 4))]
    model = make_model(nodes, [float_input("x", ["N", 5, 5, 3])], [float_input("probs", ["N", 5])], inits)
    result = passes.clean(model)
    graph = result.graph
    assert result.passes_applied == ["remove_noops", "fold_affine_into_conv", "split_terminal_softmax"]
    assert (result.layout, result.channel_axis, result.output_activation) == ("NHWC", 3, ("Softmax", 1))
    assert _ops(graph) == ["Transpose", "Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    names = [n.name for n in graph.nodes]
    assert all(names) and len(set(names)) == len(names)
    assert names[0] == "Transpose_0" and "conv" in names and "fc" in names
    assert result.opsets == {"": 17}


def test_clean_renames_duplicate_node_names():
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="block"),
        helper.make_node("Neg", ["a"], ["b"], name="block"),
        helper.make_node("Relu", ["b"], ["y"], name=""),
    ]
    model = make_model(nodes, [float_input("x", [2, 3])], [float_input("y", [2, 3])])
    names = [n.name for n in passes.clean(model).graph.nodes]
    assert names[0] == "block" and len(set(names)) == 3 and all(names)
    assert names[2] == "Relu_0" and names[1].startswith("block_")

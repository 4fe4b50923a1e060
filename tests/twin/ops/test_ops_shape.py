"""Shape and data-movement ops, and the dynamic-batch flatten chain."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from dmbp_onnx.errors import UnsupportedOpError
from oracle import check_twin
from ops_testlib import cases, check, float_input, init, make_model, opset_for, randn, single

I64 = TensorProto.INT64


def _i64(values) -> np.ndarray:
    return np.asarray(values, np.int64)


@pytest.mark.parametrize("revision,case", cases("Flatten", ["axis0", "axis1", "axis2", "negative"]))
def test_flatten(revision, case):
    axis = {"axis0": 0, "axis1": 1, "axis2": 2, "negative": -1}[case]
    if axis < 0 and revision < 11:
        axis = 3
    check(single("Flatten", revision, [("x", (2, 3, 4, 5))], axis=axis))


RESHAPE = {"zero_copy": [0, -1], "infer": [-1, 4, 5], "explicit": [6, 20], "allowzero_nonzero": [2, 0, 4, 5]}


@pytest.mark.parametrize("revision,case", cases("Reshape", RESHAPE))
def test_reshape_constant_shape(revision, case):
    attrs = {"allowzero": 1} if case == "allowzero_nonzero" and revision >= 14 else {}
    shape = RESHAPE[case] if case != "allowzero_nonzero" or revision < 14 else [2, 3, 4, 5]
    check(single("Reshape", revision, [("x", (2, 3, 4, 5))], inits=[init("s", _i64(shape))], **attrs))


@pytest.mark.parametrize("revision,case", cases("Reshape", ["zero_dim_kept"], since=14))
def test_reshape_allowzero_keeps_a_zero(revision, case):
    # allowzero=1: a 0 in the shape is a zero-size dim, not a copy of the input's dim (3 here)
    model = single("Reshape", revision, [("x", (3, 0))], inits=[init("s", _i64([0, 5]))], allowzero=1)
    twin = check(model, [randn(3, 0)])
    assert twin(torch.zeros(3, 0)).shape == (0, 5)


@pytest.mark.parametrize("revision,case", cases("Transpose", ["perm", "default"]))
def test_transpose(revision, case):
    attrs = {"perm": [0, 2, 3, 1]} if case == "perm" else {}
    check(single("Transpose", revision, [("x", (2, 3, 4, 5))], **attrs))


def _axes(op, revision, axes, x_shape):
    if revision < 13:
        return single(op, revision, [("x", x_shape)], **({"axes": axes} if axes is not None else {}))
    inits = [init("axes", _i64(axes))] if axes is not None else []
    return single(op, revision, [("x", x_shape)], inits=inits)


@pytest.mark.parametrize("revision,case", cases("Squeeze", ["some", "negative", "all"]))
def test_squeeze(revision, case):
    axes = {"some": [1], "negative": [-1, 1], "all": None}[case]
    if case == "negative" and revision < 11:
        axes = [3, 1]
    check(_axes("Squeeze", revision, axes, (2, 1, 3, 1)))


@pytest.mark.parametrize("revision,case", cases("Unsqueeze", ["front", "several", "negative"]))
def test_unsqueeze(revision, case):
    axes = {"front": [0], "several": [3, 1], "negative": [-1, 0]}[case]
    if case == "negative" and revision < 11:
        axes = [3, 0]
    check(_axes("Unsqueeze", revision, axes, (2, 3)))


EXPAND = {"same_rank": ((3, 1), [3, 4]), "higher_rank": ((3, 1), [2, 1, 6]), "ones_keep_input": ((2, 3), [1, 1]),
          "lower_rank": ((2, 1, 4), [3, 1]), "scalar": ((), [2, 3])}


@pytest.mark.parametrize("revision,case", cases("Expand", EXPAND))
def test_expand_constant_shape(revision, case):
    x_shape, shape = EXPAND[case]
    check(single("Expand", revision, [("x", x_shape)], inits=[init("s", _i64(shape))]))


@pytest.mark.parametrize("revision,case", cases("Expand", ["bias_to_runtime_shape", "of_a_shape_tensor"]))
def test_expand_runtime_shape(revision, case):
    opset = opset_for("Expand", revision)
    if case == "bias_to_runtime_shape":  # the dynamo exporter's pattern: a constant to a dynamic shape
        x_shape = ("N", 3, 4, 5)
        nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
                 helper.make_node("Expand", ["b", "s"], ["e"], name="expand"),
                 helper.make_node("Add", ["x", "e"], ["y"], name="add")]
        model = _int_model(nodes, x_shape, x_shape, opset, inits=[init("b", randn(3, 1, 1, seed=3))])
    else:  # int64 data: the runtime shape (N, 3) broadcast to (2, 2)
        x_shape = ("N", 3)
        nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
                 helper.make_node("Expand", ["s", "two"], ["e"], name="expand"),
                 helper.make_node("Cast", ["e"], ["y"], name="cast", to=TensorProto.FLOAT)]
        model = _int_model(nodes, x_shape, None, opset, inits=[init("two", _i64([2, 1]))])
    for batch in (2, 5):
        twin = check(model, [randn(batch, *x_shape[1:], seed=batch)])
    assert "Expand" in [n.op for n in twin.clean_graph.graph.nodes]


@pytest.mark.parametrize("revision,case", cases("Concat", ["axis1", "negative", "with_constant"]))
def test_concat(revision, case):
    if case == "with_constant":
        model = single("Concat", revision, [("a", (2, 3, 4))], inits=[init("c", randn(2, 1, 4, seed=7))], axis=1)
    else:
        axis = 1 if case == "axis1" or revision < 11 else -2
        model = single("Concat", revision, [("a", (2, 3, 4)), ("b", (2, 2, 4))], axis=axis)
    check(model)


def _int_model(nodes, x_shape, out_shape, opset, out_type=TensorProto.FLOAT, inits=()):
    out = helper.make_tensor_value_info("y", out_type, out_shape)
    return make_model(nodes, [float_input("x", x_shape)], [out], list(inits), opset=opset)


@pytest.mark.parametrize("revision,case", cases("Shape", ["full", "start", "start_end", "negative"]))
def test_shape(revision, case):
    attrs = {"full": {}, "start": {"start": 1}, "start_end": {"start": 1, "end": 3},
             "negative": {"start": -3, "end": -1}}[case] if revision >= 15 else {}
    nodes = [helper.make_node("Shape", ["x"], ["y"], name="shape", **attrs)]
    model = _int_model(nodes, ("N", 3, 4, 5), None, opset_for("Shape", revision), I64)
    twin = check(model, [randn(2, 3, 4, 5)])
    assert twin.forward_all(torch.zeros(2, 3, 4, 5))[0].dtype == torch.int64


SHAPE_RANGES = {"start": {"start": 1}, "end": {"end": -1}, "start_end": {"start": 1, "end": 3},
                "negative": {"start": -3, "end": -1}, "empty": {"start": 3, "end": 1}, "clamped": {"start": -9, "end": 9}}


@pytest.mark.parametrize("revision,case", cases("Shape", SHAPE_RANGES, since=15))
def test_shape_range_of_a_static_input_folds_to_the_range(revision, case):
    # onnx-graphsurgeon 0.6.1 folded Shape(start, end) of a static input to the full shape.
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape", **SHAPE_RANGES[case]),
             helper.make_node("Cast", ["s"], ["y"], name="cast", to=TensorProto.FLOAT)]
    twin = check(_int_model(nodes, (2, 3, 4, 5), None, opset_for("Shape", revision)))
    assert "Shape" not in [n.op for n in twin.clean_graph.graph.nodes]


@pytest.mark.parametrize("attrs,index", [({"start": 1}, 1), ({"start": 0, "end": 2}, 0), ({"end": -1}, 0)])
def test_shape_range_of_a_dynamic_input_never_bakes_in_the_batch(attrs, index):
    # Shape(start, end) -> Gather(index): only the dims the range keeps decide what folds.
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape", **attrs),
             helper.make_node("Gather", ["s", "i"], ["g"], name="gather", axis=0),
             helper.make_node("Cast", ["g"], ["y"], name="cast", to=TensorProto.FLOAT)]
    model = _int_model(nodes, ("N", 3, 4, 5), None, 17, inits=[init("i", _i64(index))])
    twin = check(model, [randn(2, 3, 4, 5)])
    check(model, [randn(7, 3, 4, 5)])
    expected = ([7, 3, 4, 5][attrs.get("start", 0):attrs.get("end")])[index]
    assert twin(torch.zeros(7, 3, 4, 5)).item() == expected


@pytest.mark.parametrize("revision,case", cases("Gather", ["scalar", "vector", "negative", "matrix"]))
def test_gather(revision, case):
    idx = {"scalar": _i64(1), "vector": _i64([2, 0]), "negative": _i64([-1, 0]), "matrix": _i64([[0, 1], [2, 2]])}
    axis = 0 if case == "negative" and revision < 11 else 1
    indices = idx[case] if not (case == "negative" and revision < 11) else _i64([1, 0])
    check(single("Gather", revision, [("x", (2, 3, 4))], inits=[init("i", indices)], axis=axis))


SLICE = {
    "basic": ([1], [3], [1], [1]),
    "negative": ([-3], [-1], [2], [1]),
    "clamped": ([0, 1], [100, 2**62], [0, 2], [1, 1]),
    "step": ([0], [5], [3], [2]),
    "reverse": ([-1], [-100], [3], [-1]),
    "reverse_step": ([4], [0], [3], [-2]),
    "no_axes": ([0, 1], [1, 3], None, None),
}


@pytest.mark.parametrize("revision,case", cases("Slice", SLICE))
def test_slice(revision, case):
    starts, ends, axes, steps = SLICE[case]
    if revision == 1:
        if steps is not None and any(s != 1 for s in steps):
            starts, ends, axes = [1], [3], [1]
        attrs = {"starts": starts, "ends": ends, **({"axes": axes} if axes else {})}
        check(single("Slice", revision, [("x", (2, 3, 4, 5))], **attrs))
        return
    names = ["x", "starts", "ends"]
    inits = [init("starts", _i64(starts)), init("ends", _i64(ends))]
    if axes is not None:
        names.append("axes")
        inits.append(init("axes", _i64(axes)))
    if steps is not None:
        names.append("steps")
        inits.append(init("steps", _i64(steps)))
    check(single("Slice", revision, [("x", (2, 3, 4, 5))], inits=inits, input_names=names))


def test_unknown_attribute_refused():
    node = helper.make_node("Gemm", ["x", "w"], ["y"], name="odd_gemm", broadcast=1)
    model = _int_model([node], (2, 3), (2, 4), 9, inits=[init("w", randn(3, 4))])
    with pytest.raises(UnsupportedOpError, match=r"Gemm \(opset 9\) at node 'odd_gemm'.*'broadcast'"):
        check_twin(model)


@pytest.mark.parametrize("revision,case", cases("ConstantOfShape", ["default", "value"]))
def test_constant_of_shape_from_runtime_shape(revision, case):
    value = {} if case == "default" else {"value": helper.make_tensor("v", TensorProto.FLOAT, [1], [2.5])}
    nodes = [helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("ConstantOfShape", ["s"], ["c"], name="cos", **value),
             helper.make_node("Add", ["x", "c"], ["y"], name="add")]
    model = _int_model(nodes, ("N", 3), ("N", 3), opset_for("ConstantOfShape", revision))
    check(model, [randn(4, 3)])


@pytest.mark.parametrize("revision,case", cases("Range", ["int", "float"]))
def test_range_from_runtime_size(revision, case):
    dtype = I64 if case == "int" else TensorProto.FLOAT
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="batch", axis=0),
        helper.make_node("Cast", ["n"], ["limit"], name="to_type", to=dtype),
        helper.make_node("Range", ["start", "limit", "delta"], ["r"], name="range"),
        helper.make_node("Cast", ["r"], ["y"], name="out", to=TensorProto.FLOAT),
    ]
    np_type = np.int64 if case == "int" else np.float32
    inits = [init("zero", _i64(0)), init("start", np.array(1, np_type)), init("delta", np.array(2, np_type))]
    model = _int_model(nodes, ("N", 3), None, opset_for("Range", revision), inits=inits)
    check(model, [randn(6, 3)])


@pytest.mark.parametrize("revision,case", cases("Identity", ["x"]))
def test_identity(revision, case):
    check(single("Identity", revision, [("x", (2, 3))]))


@pytest.mark.parametrize("revision,case", cases("Dropout", ["plain", "unused_mask", "ratio"]))
def test_dropout(revision, case):
    if case == "ratio" and revision >= 12:
        model = single("Dropout", revision, [("x", (2, 3))], inits=[init("r", np.array(0.3, np.float32))])
    elif case == "unused_mask":
        model = single("Dropout", revision, [("x", (2, 3))], n_outputs=2)
    else:
        model = single("Dropout", revision, [("x", (2, 3))], **({"ratio": 0.3} if case == "ratio" else {}))
    check(model)


def test_dropout_refusals():
    nodes = [helper.make_node("Dropout", ["x", "r", "t"], ["y"], name="drop")]
    model = make_model(nodes, [float_input("x", (2, 3))], [float_input("y", (2, 3))],
                       [init("r", np.array(0.5, np.float32)), init("t", np.array(True))], opset=13)
    with pytest.raises(UnsupportedOpError, match=r"Dropout \(opset 13\) at node 'drop'.*training_mode"):
        check_twin(model)


@pytest.mark.parametrize("revision,case", cases("Constant", ["tensor", "value_float", "value_ints"]))
def test_constant_node(revision, case):
    if case == "tensor" or revision < 12:
        attrs = {"value": helper.make_tensor("v", TensorProto.FLOAT, [3], [1.0, -2.0, 3.0])}
    elif case == "value_float":
        attrs = {"value_float": 1.5}
    else:
        attrs = {"value_ints": [1, 2, 3]}
    nodes = [helper.make_node("Constant", [], ["c"], name="const", **attrs)]
    if case == "value_ints" and revision >= 12:
        nodes.append(helper.make_node("Cast", ["c"], ["cf"], name="cast", to=TensorProto.FLOAT))
    nodes.append(helper.make_node("Add", ["x", nodes[-1].output[0]], ["y"], name="add"))
    check(_int_model(nodes, (2, 3), (2, 3), opset_for("Constant", revision)))


def _dynamic_flatten(opset):
    """The exporters' dynamic flatten: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]))."""
    unsq = (helper.make_node("Unsqueeze", ["n", "ax"], ["n1"], name="unsq") if opset >= 13
            else helper.make_node("Unsqueeze", ["n"], ["n1"], name="unsq", axes=[0]))
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        unsq,
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
    ]
    inits = [init("zero", _i64(0)), init("minus1", _i64([-1]))]
    if opset >= 13:
        inits.append(init("ax", _i64([0])))
    return make_model(nodes, [float_input("x", ("N", 3, 4, 5))], [float_input("y", ("N", 60))], inits, opset=opset)


@pytest.mark.parametrize("opset", [9, 11, 13, 17, 21, 23])
def test_dynamic_flatten_chain_any_batch(opset):
    model = _dynamic_flatten(opset)
    twin = check(model, [randn(1, 3, 4, 5)])
    check(model, [randn(3, 3, 4, 5, seed=1)])
    assert twin(torch.zeros(5, 3, 4, 5)).shape == (5, 60)


def test_slice_of_runtime_shape_feeds_reshape():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Slice", ["s", "b", "e"], ["head"], name="slice"),
        helper.make_node("Concat", ["head", "tail"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
    ]
    inits = [init("b", _i64([0])), init("e", _i64([2])), init("tail", _i64([20]))]
    model = make_model(nodes, [float_input("x", ("N", 3, 4, 5))], [float_input("y", ("N", 3, 20))], inits)
    twin = check(model, [randn(1, 3, 4, 5)])
    assert twin(torch.zeros(3, 3, 4, 5)).shape == (3, 3, 20)


def test_dropout_used_mask_refused():
    nodes = [helper.make_node("Dropout", ["x"], ["d", "mask"], name="drop_mask"),
             helper.make_node("Cast", ["mask"], ["m"], name="use", to=TensorProto.FLOAT),
             helper.make_node("Add", ["d", "m"], ["y"], name="add")]
    model = _int_model(nodes, (2, 3), (2, 3), 13)
    with pytest.raises(UnsupportedOpError, match=r"Dropout \(opset 13\) at node 'drop_mask'.*mask"):
        check_twin(model)

"""MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool."""

import pytest
from onnx import TensorProto, helper
from torch import nn

from dmbp_onnx.errors import UnsupportedOpError
from oracle import check_twin
from ops_testlib import cases, check, float_input, make_model, opset_for, randn, single

# name -> (input shape, attributes, first revision that has the attributes)
POOL = {
    "plain": ((2, 3, 8, 8), {"kernel_shape": [2, 2], "strides": [2, 2]}, 1),
    "sym_pad": ((2, 3, 7, 7), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}, 1),
    "asym_pad": ((2, 3, 7, 6), {"kernel_shape": [3, 2], "pads": [0, 1, 2, 0], "strides": [2, 1]}, 1),
    "big_pad": ((1, 2, 6, 6), {"kernel_shape": [3, 3], "pads": [2, 2, 2, 2]}, 1),
    "same_upper": ((2, 3, 7, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, 1),
    "same_lower": ((2, 3, 7, 6), {"kernel_shape": [2, 3], "strides": [2, 2], "auto_pad": "SAME_LOWER"}, 1),
    "valid": ((2, 3, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}, 1),
    "1d": ((2, 3, 9), {"kernel_shape": [3], "strides": [2], "pads": [1, 0]}, 1),
    "ceil": ((2, 3, 8, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, 10),
    "ceil_pad": ((2, 3, 8, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                "ceil_mode": 1}, 10),
    "ceil_asym": ((1, 2, 9, 8), {"kernel_shape": [2, 3], "strides": [3, 2], "pads": [1, 0, 0, 2],
                                 "ceil_mode": 1}, 10),
    "ceil_start_in_pad": ((1, 2, 5, 5), {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                         "ceil_mode": 1}, 10),
    "dilated": ((2, 3, 9, 9), {"kernel_shape": [2, 3], "dilations": [2, 2], "pads": [1, 1, 1, 1]}, 10),
}

AVG_EXTRA = {
    "include_pad": ((2, 3, 7, 7), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}, 7),
    "include_asym": ((2, 3, 7, 6), {"kernel_shape": [3, 2], "pads": [0, 1, 2, 0], "strides": [2, 1],
                                    "count_include_pad": 1}, 7),
    "include_ceil": ((1, 2, 8, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                    "ceil_mode": 1, "count_include_pad": 1}, 10),
    "include_same": ((2, 3, 7, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER",
                                    "count_include_pad": 1}, 7),
    "include_big_pad": ((1, 2, 6, 6), {"kernel_shape": [3, 3], "pads": [2, 2, 2, 2],
                                       "count_include_pad": 1}, 7),
}

# MaxPool gains dilations at 10, AveragePool at 19
MAX_CASES = [n for n in POOL]
AVG_CASES = {**POOL, **AVG_EXTRA}


def _run(op, revision, case, table, batch=2):
    shape, attrs, since = table[case]
    if op == "AveragePool" and "dilations" in attrs and revision < 19:
        attrs = {k: v for k, v in attrs.items() if k != "dilations"}
    shape = (batch,) + shape[1:]
    model = single(op, revision, [("x", ("N",) + shape[1:])], **attrs)
    return check(model, [randn(*shape, seed=5)])


def _eligible(op, table):
    out = []
    for p in cases(op, table):
        revision, case = p.values
        if revision >= table[case][2]:
            out.append(p)
    return out


@pytest.mark.parametrize("revision,case", _eligible("MaxPool", POOL))
def test_maxpool(revision, case):
    twin = _run("MaxPool", revision, case, POOL)
    _run("MaxPool", revision, case, POOL, batch=1)
    if case in ("plain", "sym_pad", "ceil", "ceil_pad"):
        assert isinstance(twin.module.get_submodule("maxpool_node"), nn.MaxPool2d)


@pytest.mark.parametrize("revision,case", _eligible("AveragePool", AVG_CASES))
def test_averagepool(revision, case):
    twin = _run("AveragePool", revision, case, AVG_CASES)
    if case in ("plain", "sym_pad", "include_pad"):
        assert isinstance(twin.module.get_submodule("averagepool_node"), nn.AvgPool2d)


@pytest.mark.parametrize("revision,case", cases("MaxPool", ["unused_indices"], since=8))
def test_maxpool_unused_indices(revision, case):
    node = helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp", kernel_shape=[2, 2])
    nodes = [node, helper.make_node("Relu", ["y"], ["z"], name="after")]
    model = make_model(nodes, [float_input("x", (1, 2, 4, 4))], [float_input("z", (1, 2, 3, 3))],
                       opset=opset_for("MaxPool", revision))
    check(model)


@pytest.mark.parametrize("revision,case", cases("MaxPool", ["indices_declared"], since=8))
def test_maxpool_indices_declared_as_graph_output_is_refused(revision, case):
    # The Indices output used to come back as None when it was a declared graph output.
    node = helper.make_node("MaxPool", ["x"], ["y", "idx"], name="mp_out", kernel_shape=[2, 2])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, (1, 2, 3, 3))
    opset = opset_for("MaxPool", revision)
    model = make_model([node], [float_input("x", (1, 2, 4, 4))], [float_input("y", (1, 2, 3, 3)), idx], opset=opset)
    with pytest.raises(UnsupportedOpError, match=rf"MaxPool \(opset {opset}\) at node 'mp_out'.*Indices"):
        check(model)


def test_maxpool_refusals():
    node = helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], storage_order=1)
    model = make_model([node], [float_input("x", (1, 2, 4, 4))], [float_input("y", (1, 2, 3, 3))], opset=12)
    with pytest.raises(UnsupportedOpError, match=r"MaxPool \(opset 12\) at node 'mp'.*storage_order"):
        check_twin(model)
    nodes = [helper.make_node("MaxPool", ["x"], ["y", "i"], name="mp2", kernel_shape=[2, 2]),
             helper.make_node("Cast", ["i"], ["z"], name="use", to=1)]
    model = make_model(nodes, [float_input("x", (1, 2, 4, 4))], [float_input("y", (1, 2, 3, 3)), float_input("z", (1, 2, 3, 3))],
                       opset=12)
    with pytest.raises(UnsupportedOpError, match=r"MaxPool \(opset 12\) at node 'mp2'.*Indices"):
        check_twin(model)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("revision,case", cases("GlobalAveragePool", ["1d", "2d", "3d"]))
def test_global_pool(op, revision, case):
    shape = {"1d": (2, 3, 5), "2d": (2, 3, 4, 5), "3d": (2, 3, 2, 3, 4)}[case]
    check(single(op, revision, [("x", shape)]), [randn(*shape, seed=6)])

"""Pad: constant / reflect / edge, pads as attribute or (runtime) input, constant_value, axes."""

import numpy as np
import pytest
from onnx import helper

from dmbp_onnx.errors import UnsupportedOpError
from oracle import check_twin
from ops_testlib import any_float, cases, check, float_input, init, make_model, opset_for, randn

# name -> (mode, pads over (N, C, H, W), value)
PAD = {
    "constant_zero": ("constant", [0, 0, 1, 2, 0, 0, 2, 1], None),
    "constant_value": ("constant", [0, 1, 1, 0, 0, 0, 0, 3], 1.5),
    "constant_crop": ("constant", [0, 0, -1, 1, 0, 0, 1, -2], None),
    "reflect": ("reflect", [0, 0, 2, 1, 0, 0, 1, 3], None),
    "edge": ("edge", [0, 0, 2, 1, 0, 0, 1, 3], None),
    "edge_channels": ("edge", [0, 1, 0, 0, 0, 2, 0, 0], None),
}


def _pad_model(revision, case):
    mode, pads, value = PAD[case]
    if revision == 2:
        attrs = {"mode": mode, "pads": pads, **({"value": value} if value is not None else {})}
        node = helper.make_node("Pad", ["x"], ["y"], name="pad", **attrs)
        inits = []
    else:
        names = ["x", "pads"] + (["value"] if value is not None else [])
        node = helper.make_node("Pad", names, ["y"], name="pad", mode=mode)
        inits = [init("pads", np.asarray(pads, np.int64))]
        if value is not None:
            inits.append(init("value", np.asarray(value, np.float32)))
    return make_model([node], [float_input("x", ("N", 3, 4, 5))], [any_float("y")], inits,
                      opset=opset_for("Pad", revision))


@pytest.mark.parametrize("revision,case", cases("Pad", PAD))
def test_pad(revision, case):
    model = _pad_model(revision, case)
    check(model, [randn(2, 3, 4, 5, seed=31)])
    check(model, [randn(1, 3, 4, 5, seed=32)])


@pytest.mark.parametrize("revision,case", cases("Pad", ["axes"], since=18))
def test_pad_axes(revision, case):
    node = helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"], name="pad", mode="reflect")
    inits = [init("pads", np.asarray([1, 2, 2, 0], np.int64)), init("axes", np.asarray([-1, 2], np.int64))]
    model = make_model([node], [float_input("x", (2, 3, 4, 5))], [any_float("y")], inits,
                       opset=opset_for("Pad", revision))
    check(model)


def test_pad_runtime_pads():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Slice", ["s", "b", "e"], ["n"], name="batch"),
        helper.make_node("Sub", ["n", "n"], ["zero"], name="zero"),
        helper.make_node("Concat", ["zero", "head", "zero", "tail"], ["pads"], name="pads", axis=0),
        helper.make_node("Pad", ["x", "pads"], ["y"], name="pad", mode="edge"),
    ]
    inits = [init("b", np.asarray([0], np.int64)), init("e", np.asarray([1], np.int64)),
             init("head", np.asarray([0, 1, 2], np.int64)), init("tail", np.asarray([1, 0, 1], np.int64))]
    model = make_model(nodes, [float_input("x", ("N", 3, 4, 5))], [any_float("y")], inits, opset=13)
    check(model, [randn(2, 3, 4, 5)])


def test_pad_wrap_refused():
    node = helper.make_node("Pad", ["x", "pads"], ["y"], name="wrap_pad", mode="wrap")
    model = make_model([node], [float_input("x", (2, 3))], [any_float("y")],
                       [init("pads", np.asarray([0, 1, 0, 1], np.int64))], opset=19)
    with pytest.raises(UnsupportedOpError, match=r"Pad \(opset 19\) at node 'wrap_pad'.*wrap"):
        check_twin(model)

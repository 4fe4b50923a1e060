"""Relu, LeakyRelu, PRelu, Clip, Sigmoid, Tanh, Softmax, LogSoftmax."""

import numpy as np
import pytest
from onnx import helper
from torch import nn

from ops_testlib import cases, check, float_input, init, make_model, opset_for, randn, single


@pytest.mark.parametrize("revision,case", cases("Relu", ["x"]))
def test_relu(revision, case):
    check(single("Relu", revision, [("x", (2, 3, 4))]))


@pytest.mark.parametrize("revision,case", cases("LeakyRelu", ["default", "alpha"]))
def test_leaky_relu(revision, case):
    attrs = {"alpha": 0.2} if case == "alpha" else {}
    twin = check(single("LeakyRelu", revision, [("x", (2, 3, 4))], **attrs))
    assert isinstance(twin.module.get_submodule("leakyrelu_node"), nn.LeakyReLU)


@pytest.mark.parametrize("revision,case", cases("PRelu", ["channel", "scalar", "last_axis", "runtime"]))
def test_prelu(revision, case):
    slopes = {"channel": (3, 1, 1), "scalar": (1,), "last_axis": (5,)}
    if case == "runtime":
        model = single("PRelu", revision, [("x", (2, 3, 4, 5)), ("s", (3, 1, 1))])
    else:
        model = single("PRelu", revision, [("x", (2, 3, 4, 5))], inits=[init("s", randn(*slopes[case], seed=4))])
    twin = check(model)
    assert isinstance(twin.module.get_submodule("prelu_node"), nn.PReLU) == (case in ("channel", "scalar"))


CLIP = ["relu6", "both", "min_only", "max_only", "none", "runtime"]


@pytest.mark.parametrize("revision,case", cases("Clip", CLIP[:-1]) + cases("Clip", CLIP[-1:], since=11))
def test_clip(revision, case):
    bounds = {"relu6": (0.0, 6.0), "both": (-0.5, 0.7), "min_only": (0.1, None), "max_only": (None, 0.3),
              "none": (None, None), "runtime": (-0.2, 0.4)}[case]
    x = randn(2, 3, 4) * 5
    if revision < 11:
        attrs = {k: v for k, v in zip(("min", "max"), bounds) if v is not None}
        model = single("Clip", revision, [("x", (2, 3, 4))], **attrs)
        check(model, [x])
        return
    if case == "runtime":
        model = single("Clip", revision, [("x", (2, 3, 4)), ("lo", ()), ("hi", ())])
        check(model, [x, np.array(-0.2, np.float32), np.array(0.4, np.float32)])
        return
    names, inits = ["x"], []
    for name, value in zip(("lo", "hi"), bounds):
        if value is None:
            names.append("")
        else:
            names.append(name)
            inits.append(init(name, np.array(value, np.float32)))
    while names[-1] == "":
        names.pop()
    model = single("Clip", revision, [("x", (2, 3, 4))], inits=inits, input_names=names)
    twin = check(model, [x])
    if case == "relu6":
        assert isinstance(twin.module.get_submodule("clip_node"), nn.ReLU6)


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh"])
@pytest.mark.parametrize("revision,case", cases("Sigmoid", ["x"]))
def test_sigmoid_tanh(op, revision, case):
    check(single(op, revision, [("x", (2, 3, 4))]))


SOFTMAX = ["default", "axis0", "axis1", "last", "negative"]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("revision,case", cases("Softmax", SOFTMAX))
def test_softmax(op, revision, case):
    attrs = {"default": {}, "axis0": {"axis": 0}, "axis1": {"axis": 1}, "last": {"axis": 2},
             "negative": {"axis": -2}}[case]
    nodes = [
        helper.make_node(op, ["x"], ["s"], name="softmax", **attrs),
        helper.make_node("Neg", ["s"], ["y"], name="after"),
    ]
    model = make_model(nodes, [float_input("x", (2, 3, 4))], [float_input("y", (2, 3, 4))],
                       opset=max(opset_for(op, revision), 7))
    check(model)

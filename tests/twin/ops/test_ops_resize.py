"""Resize and Upsample: nearest modes, linear coordinate modes, scales or sizes, refusals."""

import numpy as np
import pytest
from onnx import helper

from dmbp_onnx.errors import UnsupportedOpError
from oracle import check_twin
from ops_testlib import any_float, cases, check, float_input, init, make_model, opset_for, randn

X_SHAPE = (2, 3, 5, 6)

# name -> (attrs, scales or None, sizes or None)
RESIZE = {
    "nearest_default_x2": ({"mode": "nearest"}, [1, 1, 2, 2], None),
    "nearest_asym_floor": ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                            "nearest_mode": "floor"}, [1, 1, 2, 3], None),
    "nearest_ceil_frac": ({"mode": "nearest", "nearest_mode": "ceil"}, [1, 1, 1.5, 0.7], None),
    "nearest_prefer_ceil": ({"mode": "nearest", "nearest_mode": "round_prefer_ceil"}, [1, 1, 2.5, 0.5], None),
    "nearest_sizes": ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}, None, [2, 3, 9, 4]),
    "nearest_align": ({"mode": "nearest", "coordinate_transformation_mode": "align_corners"}, [1, 1, 1.6, 2], None),
    "linear_half_pixel": ({"mode": "linear"}, [1, 1, 2, 1.5], None),
    "linear_pytorch": ({"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, None,
                       [2, 3, 1, 9]),
    "linear_align": ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, None, [2, 3, 8, 11]),
    "linear_asym": ({"mode": "linear", "coordinate_transformation_mode": "asymmetric"}, [1, 1, 2, 0.5], None),
    "linear_down": ({"mode": "linear"}, [1, 1, 0.6, 0.5], None),
}


def _resize_model(revision, case):
    attrs, scales, sizes = RESIZE[case]
    names, inits = ["x"], []
    if revision < 13:
        names.append("roi")
        inits.append(init("roi", np.zeros(0, np.float32)))
    else:
        names.append("")
    if scales is not None:
        names.append("scales")
        inits.append(init("scales", np.asarray(scales, np.float32)))
    else:
        if revision < 13:
            names.append("scales")
            inits.append(init("scales", np.zeros(0, np.float32)))
        else:
            names.append("")
        names.append("sizes")
        inits.append(init("sizes", np.asarray(sizes, np.int64)))
    node = helper.make_node("Resize", names, ["y"], name="resize", **attrs)
    return make_model([node], [float_input("x", ("N",) + X_SHAPE[1:])], [any_float("y")], inits,
                      opset=opset_for("Resize", revision))


@pytest.mark.parametrize("revision,case", cases("Resize", RESIZE, since=11))
def test_resize(revision, case):
    model = _resize_model(revision, case)
    check(model, [randn(*X_SHAPE, seed=21)])


@pytest.mark.parametrize("revision,case", cases("Resize", ["axes"], since=18))
def test_resize_axes(revision, case):
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="resize", mode="linear", axes=[3, 2])
    model = make_model([node], [float_input("x", X_SHAPE)], [any_float("y")],
                       [init("scales", np.asarray([2, 1.5], np.float32))], opset=opset_for("Resize", revision))
    check(model)


def test_resize_runtime_sizes():
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Mul", ["s", "two"], ["sizes"], name="twice"),
        helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="resize", mode="nearest"),
    ]
    model = make_model(nodes, [float_input("x", ("N", 3, 4, 5))], [any_float("y")],
                       [init("two", np.asarray([1, 1, 2, 2], np.int64))], opset=13)
    check(model, [randn(1, 3, 4, 5)])
    check(model, [randn(3, 3, 4, 5)])


LEGACY = {"nearest_x2": ("nearest", [1, 1, 2, 2]), "nearest_x3_2": ("nearest", [1, 1, 3, 2]),
          "linear_x2": ("linear", [1, 1, 2, 2]), "linear_frac": ("linear", [1, 1, 1.5, 2.5])}


RESIZE_10 = {**LEGACY, "nearest_down": ("nearest", [1, 1, 0.5, 0.7]), "linear_down": ("linear", [1, 1, 0.6, 0.5])}


@pytest.mark.parametrize("revision,case", cases("Resize", RESIZE_10, until=10))
def test_resize_10(revision, case):
    mode, scales = RESIZE_10[case]
    node = helper.make_node("Resize", ["x", "scales"], ["y"], name="resize", mode=mode)
    model = make_model([node], [float_input("x", X_SHAPE)], [any_float("y")],
                       [init("scales", np.asarray(scales, np.float32))], opset=10)
    check(model)


@pytest.mark.parametrize("revision,case", cases("Upsample", LEGACY))
def test_upsample(revision, case):
    mode, scales = LEGACY[case]
    if revision == 7:
        node = helper.make_node("Upsample", ["x"], ["y"], name="up", mode=mode, scales=[float(v) for v in scales])
        inits = []
    else:
        node = helper.make_node("Upsample", ["x", "scales"], ["y"], name="up", mode=mode)
        inits = [init("scales", np.asarray(scales, np.float32))]
    model = make_model([node], [float_input("x", X_SHAPE)], [any_float("y")], inits,
                       opset=opset_for("Upsample", revision))
    check(model)


REFUSED = {
    "cubic": ({"mode": "cubic"}, "mode 'cubic'"),
    "tf_crop": ({"coordinate_transformation_mode": "tf_crop_and_resize"}, "tf_crop_and_resize"),
    "antialias": ({"mode": "linear", "antialias": 1}, "antialias"),
    "keep_aspect": ({"keep_aspect_ratio_policy": "not_larger"}, "keep_aspect_ratio_policy"),
    "exclude_outside": ({"exclude_outside": 1}, "exclude_outside"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_resize_refusals(case):
    attrs, words = REFUSED[case]
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], name="rs", **attrs)
    model = make_model([node], [float_input("x", X_SHAPE)], [any_float("y")],
                       [init("scales", np.asarray([1, 1, 2, 2], np.float32))], opset=19)
    with pytest.raises(UnsupportedOpError, match=rf"Resize \(opset 19\) at node 'rs'.*{words}"):
        check_twin(model)

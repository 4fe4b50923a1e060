"""ReduceMean, ReduceMax, ReduceSum: axes as attribute or input, keepdims, noop_with_empty_axes, empty sets."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

import dmbp_onnx
from dmbp_onnx.errors import UnsupportedOpError
from ops_testlib import any_float, cases, check, float_input, init, make_model, opset_for

REDUCE = {"axes_keep": ([2, 3], 1), "axes_drop": ([1], 0), "negative": ([-1], 1), "all": (None, 0),
          "all_keep": (None, 1)}
INPUT_SINCE = {"ReduceMean": 18, "ReduceMax": 18, "ReduceSum": 13}


def _model(op, revision, axes, keepdims, noop=None):
    attrs = {"keepdims": keepdims}
    names, inits = ["x"], []
    if revision < INPUT_SINCE[op]:
        if axes is not None:
            attrs["axes"] = axes
    else:
        if noop is not None:
            attrs["noop_with_empty_axes"] = noop
        if axes is not None:
            names.append("axes")
            inits.append(init("axes", np.asarray(axes, np.int64)))
    node = helper.make_node(op, names, ["y"], name="reduce", **attrs)
    return make_model([node], [float_input("x", (2, 3, 4, 5))], [any_float("y")], inits,
                      opset=opset_for(op, revision))


def _all_cases():
    out = []
    for op in INPUT_SINCE:
        for param in cases(op, REDUCE):
            revision, case = param.values
            out.append(pytest.param(op, revision, case, id=f"{op}{revision}-{case}", marks=param.marks))
    return out


@pytest.mark.parametrize("op,revision,case", _all_cases())
def test_reduce(op, revision, case):
    axes, keepdims = REDUCE[case]
    if axes is not None and min(axes) < 0 and revision < 11:
        axes = [3]
    check(_model(op, revision, axes, keepdims))


@pytest.mark.parametrize("op", list(INPUT_SINCE))
def test_reduce_noop_with_empty_axes(op):
    revision = INPUT_SINCE[op]
    check(_model(op, revision, None, 1, noop=1))


EMPTY = {"keep": 1, "drop": 0}


def _empty_cases():
    out = []
    for op in ("ReduceMax", "ReduceSum"):
        for param in cases(op, EMPTY, since=INPUT_SINCE[op]):
            revision, case = param.values
            out.append(pytest.param(op, revision, case, id=f"{op}{revision}-{case}", marks=param.marks))
    return out


@pytest.mark.parametrize("op,revision,case", _empty_cases())
def test_reduce_over_an_empty_axis(op, revision, case):
    # ReduceMax gives -inf, ReduceSum 0 (ReduceMean is undefined by ONNX: see below).
    model = _model(op, revision, [1], EMPTY[case])
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 0
    check(model, [np.zeros((2, 0, 4, 5), np.float32)])


@pytest.mark.parametrize("dtype,lowest", [(TensorProto.INT64, np.iinfo(np.int64).min),
                                          (TensorProto.INT32, np.iinfo(np.int32).min)])
def test_reduce_max_over_an_empty_axis_gives_the_integer_minimum(dtype, lowest):
    node = helper.make_node("ReduceMax", ["x"], ["y"], name="reduce", axes=[0], keepdims=0)
    value = helper.make_tensor_value_info
    model = make_model([node], [value("x", dtype, [0, 3])], [value("y", dtype, None)], opset=13)
    twin = check(model, [np.zeros((0, 3), helper.tensor_dtype_to_np_dtype(dtype))])
    assert twin(torch.zeros(0, 3, dtype=torch.int64 if dtype == TensorProto.INT64 else torch.int32)).tolist() == [lowest] * 3


def test_reduce_mean_over_an_empty_axis_is_nan():
    # ONNX leaves it undefined (onnxruntime gives 0, the reference evaluator NaN); the twin keeps torch's NaN.
    twin = dmbp_onnx.load(_model("ReduceMean", 18, [1], 0))
    assert torch.isnan(twin(torch.zeros(2, 0, 4, 5))).all()


def test_reduce_max_refuses_unsigned_inputs_torch_cannot_reduce():
    node = helper.make_node("ReduceMax", ["x"], ["y"], name="umax", keepdims=0)
    value = helper.make_tensor_value_info
    model = make_model([node], [value("x", TensorProto.UINT32, [3])], [value("y", TensorProto.UINT32, None)], opset=13)
    with pytest.raises(UnsupportedOpError, match=r"ReduceMax \(opset 13\) at node 'umax'.*dtype uint32"):
        check(model)

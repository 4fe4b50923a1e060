"""ReduceMean, ReduceMax, ReduceSum: axes as attribute or input, keepdims, noop_with_empty_axes."""

import numpy as np
import pytest
from onnx import helper

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

"""GatherND: batch_dims, negative indices, runtime or constant indices, gradients to the data."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

import dmbp_onnx
from ops_testlib import cases, check, float_input, init, make_model, opset_for, randn

# name -> (data shape, indices, batch_dims)
GATHER_ND = {
    "elements": ((2, 2), [[0, 0], [1, 1]], 0),
    "slices": ((3, 4, 2), [[1], [0], [2]], 0),
    "matrix": ((3, 4, 2), [[[2, 3]], [[0, 1]]], 0),
    "negative": ((3, 4), [[-1, -4], [0, -2]], 0),
    "whole": ((2, 3), np.zeros((2, 0), np.int64), 0),
    "batch": ((2, 3, 4), [[1], [2]], 1),
    "batch2": ((2, 2, 3, 4), [[[0, 1], [2, 3]], [[1, 0], [0, 0]]], 2),
}


def _model(revision: int, case: str, runtime_indices: bool):
    shape, indices, batch_dims = GATHER_ND[case]
    indices = np.asarray(indices, np.int64)
    attrs = {"batch_dims": batch_dims} if revision >= 12 else {}
    node = helper.make_node("GatherND", ["x", "i"], ["y"], name="gather_nd", **attrs)
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    opset = opset_for("GatherND", revision)
    if runtime_indices:
        i = helper.make_tensor_value_info("i", TensorProto.INT64, list(indices.shape))
        return make_model([node], [float_input("x", shape), i], [out], opset=opset), indices
    return make_model([node], [float_input("x", shape)], [out], [init("i", indices)], opset=opset), indices


def _cases():
    """Every registered revision; batch_dims cases from revision 12, which added the attribute."""
    return [p for p in cases("GatherND", GATHER_ND) if p.values[0] >= 12 or not GATHER_ND[p.values[1]][2]]


@pytest.mark.parametrize("runtime_indices", [False, True], ids=["constant", "runtime"])
@pytest.mark.parametrize("revision,case", _cases())
def test_gather_nd(revision, case, runtime_indices):
    shape = GATHER_ND[case][0]
    model, indices = _model(revision, case, runtime_indices)
    data = randn(*shape)
    check(model, [data, indices] if runtime_indices else [data])


def test_gather_nd_gradient_reaches_every_gathered_element():
    model, _ = _model(13, "matrix", False)
    x = torch.zeros(3, 4, 2, requires_grad=True)
    dmbp_onnx.load(model)(x).sum().backward()
    expected = torch.zeros(3, 4, 2)
    expected[2, 3] = expected[0, 1] = 1
    assert torch.equal(x.grad, expected)

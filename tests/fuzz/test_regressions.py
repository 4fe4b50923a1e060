"""Every failure the fuzzer (or the conformance run) found, pinned as a test.

A twin bug stays ``xfail(strict=True)`` with its reason until it is fixed; a
case where onnxruntime is the odd one out checks the twin against torch and
records onnxruntime's behaviour, so a change on either side is noticed.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import TensorProto, helper

import dmbp_onnx
from dmbp_onnx.errors import UnsupportedOpError
from fuzz.architectures import Arch, ConvT, Pool, Upsample, build, sample_input
from fuzz.export import export
from fuzz.harness import ATOL, check_example, known_issue
from oracle import RTOL, check_twin, float_input, make_model, reference_outputs

# Fuzz find (first run, shrunk): torch allows output_padding < max(stride, dilation),
# onnxruntime 1.32 rejects output_padding >= stride at run time ("output_padding (1) may be
# too large for stride (1)"). Twin and torch agree; the fuzz generator keeps output_padding < stride.
CONV_T_PAST_STRIDE = Arch(
    dims=1, nhwc=False, channels=1, size=4, batch=1,
    blocks=(ConvT(out=1, kernel=1, stride=1, padding=0, output_padding=1, dilation=2, groups=1, bias=False,
                  act=None),),
    head="none", classes=2, seed=0,
)


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def test_conv_transpose_output_padding_past_stride_twin_matches_torch():
    module, x = build(CONV_T_PAST_STRIDE), sample_input(CONV_T_PAST_STRIDE)
    data = export(module, x, "legacy", 17)
    with torch.no_grad():
        expected = module(x).numpy()
        got = dmbp_onnx.load(data)(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    proto = onnx.load_model_from_string(data)
    with pytest.raises(Exception, match="output_padding"):
        reference_outputs(proto, {proto.graph.input[0].name: x.numpy()})


def test_conv_transpose_output_padding_below_stride_passes_the_oracle():
    arch = Arch(
        dims=2, nhwc=True, channels=2, size=5, batch=2,
        blocks=(ConvT(out=4, kernel=3, stride=2, padding=1, output_padding=1, dilation=2, groups=2, bias=True,
                      act=None),),
        head="none", classes=2, seed=3,
    )
    check_example(arch, "legacy", 11)


# Fuzz find (seed 1 run, shrunk): pools with ceil_mode whose last window would start in the
# end padding. torch, onnxruntime's kernels and the twin drop that window (7 -> 3 here); ONNX
# shape inference before revision 22 of AveragePool/MaxPool keeps it (7 -> 4), so onnxruntime
# refuses the legacy export at opset 17 ("Dimension mismatch in unification between 3 and 12"
# at the Gemm). The twin follows torch.
CEIL_POOL_LAST_WINDOW_IN_PADDING = Arch(
    dims=2, nhwc=False, channels=3, size=7, batch=1,
    blocks=(Pool(kind="avg", kernel=2, stride=3, padding=1, ceil_mode=True, count_include_pad=False),
            Pool(kind="avg", kernel=1, stride=3, padding=0, ceil_mode=False)),
    head="flatten", classes=2, seed=2,
)


def test_ceil_pool_last_window_in_padding_twin_matches_torch():
    arch = CEIL_POOL_LAST_WINDOW_IN_PADDING
    module, x = build(arch), sample_input(arch)
    data = export(module, x, "legacy", 17)
    with torch.no_grad():
        expected = module(x).numpy()
        got = dmbp_onnx.load(data)(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)
    with pytest.raises(Exception, match="[Mm]ismatch"):
        onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])


def test_known_issues_are_recognised():
    assert known_issue(CEIL_POOL_LAST_WINDOW_IN_PADDING, "legacy") is not None
    assert known_issue(DYNAMO_LINEAR_1D, "legacy") is None
    assert known_issue(CONV_T_PAST_STRIDE, "legacy") is None


def test_ceil_pool_last_window_in_padding_passes_the_oracle_at_opset_11():
    check_example(CEIL_POOL_LAST_WINDOW_IN_PADDING, "legacy", 11)


# Fuzz find (seed 1 run): the dynamo exporter turns 1-D linear upsampling into Transpose/GatherND
# arithmetic; the twin had no GatherND converter (fixed: dmbp_onnx/twin/ops/gather.py).
DYNAMO_LINEAR_1D = Arch(dims=1, nhwc=False, channels=2, size=6, batch=1, blocks=(Upsample("linear", 2, True),),
                        head="none", classes=2, seed=0)


def test_dynamo_linear_upsample_1d():
    check_example(DYNAMO_LINEAR_1D, "dynamo", None)


# ---------------------------------------------------------------- conformance finds (minimal ONNX repros)

# onnx-graphsurgeon 0.6.1 fold_constants(fold_shapes=True) folded Shape to the full shape, ignoring
# start/end (opset 15+). Fixed: fold_constants splits such a Shape into Shape -> Slice first.
@pytest.mark.parametrize("attrs", [{"start": 1}, {"end": -1}, {"start": 1, "end": 2}, {"start": 3, "end": 1}])
def test_shape_start_end_on_static_input(attrs):
    model = make_model(
        [helper.make_node("Shape", ["x"], ["s"], **attrs), helper.make_node("Cast", ["s"], ["y"], to=1)],
        [float_input("x", [2, 3, 4, 5])], [float_input("y", [None])], opset=17,
    )
    check_twin(model)


# MaxPool's Indices graph output came back as None instead of a typed refusal.
def test_maxpool_indices_output_is_refused():
    model = make_model(
        [helper.make_node("MaxPool", ["x"], ["y", "i"], kernel_shape=[2, 2])],
        [float_input("x", [1, 1, 4, 4])],
        [float_input("y", [1, 1, 2, 2]), helper.make_tensor_value_info("i", TensorProto.INT64, [1, 1, 2, 2])],
    )
    with pytest.raises(UnsupportedOpError, match="MaxPool.*'Indices' output is used"):
        dmbp_onnx.load(model)


# Unsigned 16/32/64-bit inputs crashed in torch (NotImplementedError) instead of a typed refusal.
def test_uint32_add_is_refused():
    value = helper.make_tensor_value_info
    model = make_model(
        [helper.make_node("Add", ["a", "b"], ["y"])],
        [value("a", TensorProto.UINT32, [3]), value("b", TensorProto.UINT32, [3])],
        [value("y", TensorProto.UINT32, [3])],
    )
    with pytest.raises(UnsupportedOpError, match="Add.*dtype uint32"):
        dmbp_onnx.load(model)

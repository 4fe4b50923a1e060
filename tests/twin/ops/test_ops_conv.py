"""Conv and ConvTranspose: groups, depthwise, dilations, strides, pads, auto_pad, 1-D."""

import pytest
from torch import nn

from dmbp_onnx.errors import UnsupportedOpError
from oracle import check_twin
from ops_testlib import cases, check, init, randn, single

# name -> (input shape, weight shape, attributes)
CONV = {
    "plain": ((2, 3, 7, 7), (4, 3, 3, 3), {}),
    "sym_pad_stride": ((2, 3, 8, 8), (4, 3, 3, 3), {"pads": [1, 1, 1, 1], "strides": [2, 2]}),
    "asym_pad": ((2, 3, 7, 6), (4, 3, 3, 2), {"pads": [0, 1, 2, 0]}),
    "groups": ((2, 4, 6, 6), (6, 2, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    "depthwise": ((2, 4, 6, 6), (4, 1, 3, 3), {"group": 4, "dilations": [2, 2], "pads": [2, 2, 2, 2]}),
    "same_upper": ((2, 3, 7, 6), (4, 3, 4, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    "same_lower": ((2, 3, 7, 6), (4, 3, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 1]}),
    "valid": ((2, 3, 7, 7), (4, 3, 3, 3), {"auto_pad": "VALID", "kernel_shape": [3, 3]}),
    "1d": ((2, 3, 9), (4, 3, 3), {"pads": [2, 1], "strides": [2]}),
}


def _conv_model(op, revision, case, table, bias=True):
    x_shape, w_shape, attrs = table[case]
    out_channels = w_shape[0] if op == "Conv" else w_shape[1] * attrs.get("group", 1)
    inits = [init("w", randn(*w_shape, seed=11))]
    if bias:
        inits.append(init("b", randn(out_channels, seed=12)))
    return single(op, revision, [("x", ("N",) + x_shape[1:])], inits=inits, **attrs), x_shape


@pytest.mark.parametrize("revision,case", cases("Conv", CONV))
def test_conv(revision, case):
    model, x_shape = _conv_model("Conv", revision, case, CONV, bias=case != "valid")
    check(model, [randn(*x_shape, seed=13)])
    check(model, [randn(1, *x_shape[1:], seed=14)])


CONV_T = {
    "plain": ((2, 3, 4, 4), (3, 2, 3, 3), {}),
    "stride_pads": ((2, 3, 4, 5), (3, 2, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "output_padding": ((2, 3, 4, 5), (3, 2, 3, 3), {"strides": [2, 3], "pads": [1, 1, 1, 1],
                                                    "output_padding": [1, 2]}),
    "asym_pads": ((2, 3, 4, 5), (3, 2, 3, 2), {"strides": [2, 2], "pads": [0, 1, 2, 0]}),
    "groups": ((2, 4, 3, 3), (4, 3, 3, 3), {"group": 2, "strides": [2, 2]}),
    "depthwise_dilated": ((2, 4, 3, 3), (4, 1, 3, 3), {"group": 4, "dilations": [2, 2], "pads": [1, 1, 1, 1]}),
    "output_shape": ((2, 3, 4, 4), (3, 2, 3, 3), {"strides": [2, 2], "output_shape": [10, 9]}),
    "same_upper": ((2, 3, 4, 5), (3, 2, 4, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    "same_lower": ((2, 3, 4, 5), (3, 2, 4, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    "no_kernel_shape": ((2, 3, 4, 4), (3, 2, 2, 2), {"strides": [2, 2]}),
    "with_kernel_shape": ((2, 3, 4, 4), (3, 2, 2, 2), {"strides": [2, 2], "kernel_shape": [2, 2]}),
    "1d": ((2, 3, 5), (3, 2, 4), {"strides": [2], "pads": [1, 2], "output_padding": [1]}),
}


@pytest.mark.parametrize("revision,case", cases("ConvTranspose", CONV_T))
def test_conv_transpose(revision, case):
    model, x_shape = _conv_model("ConvTranspose", revision, case, CONV_T)
    twin = check(model, [randn(*x_shape, seed=13)])
    check(model, [randn(1, *x_shape[1:], seed=14)])
    direct = case in ("plain", "stride_pads", "output_padding", "groups", "depthwise_dilated", "no_kernel_shape",
                      "with_kernel_shape")
    assert isinstance(twin.module.get_submodule("convtranspose_node"), nn.modules.conv._ConvTransposeNd) == direct


def test_conv_runtime_weight_refused():
    model = single("Conv", 11, [("x", (1, 3, 5, 5)), ("w", (2, 3, 3, 3))])
    with pytest.raises(UnsupportedOpError, match=r"Conv \(opset 11\) at node 'conv_node'.*constant"):
        check_twin(model)

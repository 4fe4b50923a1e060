"""The builder: naming, mask sites, bit-identity of sites at rest."""

import numpy as np
import torch
from onnx import helper

from oracle import check_twin, float_input, init, make_model


def _conv_relu_gemm():
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv.0", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu.0"),
        helper.make_node("Flatten", ["r"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "g1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["hr"], name="relu.1"),
        helper.make_node("Gemm", ["hr", "g2"], ["y"], name="fc2", transB=1),
    ]
    inits = [
        init("w", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        init("b", rng.standard_normal(4).astype(np.float32)),
        init("g1", rng.standard_normal((5, 4 * 6 * 6)).astype(np.float32)),
        init("g2", rng.standard_normal((3, 5)).astype(np.float32)),
    ]
    return make_model(nodes, [float_input("x", ["N", 3, 6, 6])], [float_input("y", ["N", 3])], inits)


def test_mask_sites_follow_convs_and_hidden_linear_layers_only():
    model = _conv_relu_gemm()
    twin = check_twin(model)
    assert [(s.onnx_node, s.channels) for s in twin.mask_sites] == [("conv.0", 4), ("fc1", 5)]
    assert "conv_0" in dict(twin.module.named_children())


def test_sites_at_rest_are_bit_identical_in_output_and_gradient():
    from dmbp_onnx.twin.build import build_module
    from dmbp_onnx.graph.passes import clean

    model = _conv_relu_gemm()
    with_sites = build_module(clean(model).graph, {"": 17}).module
    without = build_module(clean(model).graph, {"": 17}, mask_sites=False).module
    x = torch.randn(3, 3, 6, 6, requires_grad=True)
    a = with_sites(x)
    (ga,) = torch.autograd.grad(a[:, 1].sum(), x)
    b = without(x)
    (gb,) = torch.autograd.grad(b[:, 1].sum(), x)
    assert torch.equal(a, b) and torch.equal(ga, gb)

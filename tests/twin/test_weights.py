"""Weights reach the twin copied once, never shared with the graph, without random initialisation."""

import numpy as np
import onnx_graphsurgeon as gs
import pytest
import torch
from onnx import helper
from torch import nn

from dmbp_onnx.twin.registry import NodeContext, module_with_weights
from oracle import check_twin, float_input, init, make_model


def _gemm_model(weight: np.ndarray):
    node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)
    inits = [init("w", weight), init("b", np.arange(weight.shape[0], dtype=np.float32))]
    return make_model([node], [float_input("x", ["N", weight.shape[1]])],
                      [float_input("y", ["N", weight.shape[0]])], inits)  # fmt: skip


def _context(model) -> NodeContext:
    (node,) = gs.import_onnx(model).nodes
    return NodeContext(node=node, opset=17, since_version=13)


def test_constant_tensor_is_a_copy_and_the_graph_keeps_a_read_only_value():
    weight = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    ctx = _context(_gemm_model(weight))
    first = ctx.constant_tensor(1)
    graph_value = ctx.node.inputs[1].values
    assert not graph_value.flags.writeable
    np.testing.assert_array_equal(graph_value, weight)
    first.add_(1.0)  # the twin owns its weights: the graph and a second read are untouched
    np.testing.assert_array_equal(ctx.node.inputs[1].values, weight)
    np.testing.assert_array_equal(ctx.constant_tensor(1).numpy(), weight)


def test_constant_tensor_copies_values_the_graph_already_holds():
    ctx = _context(_gemm_model(np.ones((2, 2), np.float32)))
    held = np.full((2, 2), 3.0, np.float32)
    ctx.node.inputs[1].values = held
    tensor = ctx.constant_tensor(1)
    tensor.zero_()
    np.testing.assert_array_equal(held, 3.0)


def test_module_with_weights_holds_the_given_tensors_without_init():
    weight, bias = torch.randn(4, 3, 2, 2), torch.randn(4)
    conv = module_with_weights(nn.Conv2d, {"weight": weight, "bias": bias},
                               in_channels=3, out_channels=4, kernel_size=2)  # fmt: skip
    assert all(not p.is_meta and not p.requires_grad for p in conv.parameters())
    assert conv.weight.data_ptr() == weight.data_ptr()  # adopted, not copied again
    torch.testing.assert_close(conv.bias, bias, rtol=0, atol=0)
    x = torch.randn(1, 3, 5, 5)
    torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, weight, bias))


def test_module_with_weights_casts_and_broadcasts_as_copy_would():
    layer = module_with_weights(nn.Linear, {"weight": torch.ones(2, 3, dtype=torch.float64),
                                            "bias": torch.tensor([0.5])},
                                in_features=3, out_features=2)  # fmt: skip
    assert layer.weight.dtype == torch.float32 and layer.bias.tolist() == [0.5, 0.5]
    with pytest.raises(RuntimeError):
        module_with_weights(nn.Linear, {"weight": torch.ones(2, 3), "bias": torch.ones(3)},
                            in_features=3, out_features=2)  # fmt: skip
    with pytest.raises(RuntimeError, match=r"\['bias'\] were not given"):
        module_with_weights(nn.Linear, {"weight": torch.ones(2, 3)}, in_features=3, out_features=2)


def test_gemm_and_conv_twins_match_onnxruntime():
    weight = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    twin = check_twin(_gemm_model(weight))
    assert isinstance(twin.module.fc, nn.Linear)
    np.testing.assert_array_equal(twin.module.fc.weight.numpy(), weight)
    rng = np.random.default_rng(2)
    conv = make_model(
        [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[1, 1, 1, 1], group=2)],
        [float_input("x", ["N", 4, 5, 5])], [float_input("y", ["N", 6, 5, 5])],
        [init("w", rng.standard_normal((6, 2, 3, 3)).astype(np.float32)),
         init("b", rng.standard_normal(6).astype(np.float32))],
    )  # fmt: skip
    check_twin(conv)

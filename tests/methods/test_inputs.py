"""The shared contract: input and target validation, BoxTarget score maps, eligibility, display."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from small_models import export
from torch import nn

import dmbp_onnx
from dmbp_onnx.errors import IneligibleModelError, InputError
from dmbp_onnx.methods import DMBP, METHODS, Attribution, BoxTarget, Gradient, RegionTarget
from dmbp_onnx.methods.display import DISPLAY_PERCENTILE, authors_display, clip_display


class Permute(nn.Module):
    def forward(self, x):
        return x.permute(0, 2, 3, 1)


def score_map_twin(channels_last: bool):
    torch.manual_seed(2)
    layers = [nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, padding=1)]
    model = nn.Sequential(*layers, *([Permute()] if channels_last else [])).eval()
    return model, dmbp_onnx.load(export(model, (3, 10, 10)))


def test_method_registry():
    assert set(METHODS) == {"dmbp", "gradient", "gradxinput", "ig", "smoothgrad", "guidedbp", "gradcam", "lrp"}


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.randn(2, 3, 11, 12), r"\(2, 3, 11, 12\).*axis 2 must be 12"),
        (torch.randn(3, 12, 12), r"\(3, 12, 12\).*4 dims"),
        (torch.full((1, 3, 12, 12), float("nan")), "NaN or Inf"),
        (torch.ones(1, 3, 12, 12, dtype=torch.int64), "floating point"),
        ([[1.0]], "tensor or numpy"),
    ],
)
def test_bad_inputs_raise(net, x, message):
    with pytest.raises(InputError, match=message):
        Gradient(net[1]).attribute(x)


@pytest.mark.parametrize(
    "target, message",
    [(5, "out of range for 5 classes"), (-1, "out of range"), ([0, 1], "2 targets given for a batch of 3"),
     ("a", "not a class index"), (BoxTarget(0), "needs an output map"), (1.5, "not a class index")],
)  # fmt: skip
def test_bad_targets_raise(net, images, target, message):
    with pytest.raises(InputError, match=message):
        Gradient(net[1]).attribute(images, target=target)
    with pytest.raises(InputError, match=message):
        DMBP(net[1], iterations=1).attribute(images, target=target)


def test_numpy_float64_input_and_explicit_targets(net, images):
    result = Gradient(net[1]).attribute(images.double().numpy(), target=np.array([4, 0, 2]))
    assert result.target == [4, 0, 2] and result.signed.dtype == torch.float32
    out = net[1](images)
    torch.testing.assert_close(result.score, out[[0, 1, 2], [4, 0, 2]])


def test_ineligible_model_names_the_node():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid(), nn.Conv2d(4, 2, 3), nn.Flatten(), nn.Linear(2 * 8 * 8, 3))
    twin = dmbp_onnx.load(export(model, (3, 12, 12)))
    with pytest.raises(IneligibleModelError, match="Sigmoid") as info:
        DMBP(twin)
    assert [op for _, op in info.value.nodes] == ["Sigmoid"]
    assert Gradient(twin).attribute(torch.randn(1, 3, 12, 12), target=0).signed.shape == (1, 3, 12, 12)


def test_bad_options_raise(net):
    with pytest.raises(InputError, match="objective"):
        DMBP(net[1], objective="r3")
    with pytest.raises(InputError, match="iterations"):
        DMBP(net[1], iterations=-1)


@pytest.mark.parametrize("channels_last", [False, True])
def test_box_target_on_a_score_map(channels_last):
    model, twin = score_map_twin(channels_last)
    x = torch.randn(2, 3, 10, 10)
    target = BoxTarget(1, box=(2, 3, 6, 8))
    result = Gradient(twin).attribute(x, target=target)
    out = model(x)
    region = out[..., 2:6, 3:8, 1] if channels_last else out[:, 1, 2:6, 3:8]
    torch.testing.assert_close(result.score, region.sum((1, 2)), rtol=1e-5, atol=1e-5)
    xg = x.clone().requires_grad_(True)
    region = model(xg)[..., 2:6, 3:8, 1] if channels_last else model(xg)[:, 1, 2:6, 3:8]
    (grad,) = torch.autograd.grad(region.sum(), xg)
    torch.testing.assert_close(result.signed, grad, rtol=1e-4, atol=1e-6)
    dmbp = DMBP(twin, iterations=5, device="cpu").attribute(x, target=target)
    assert dmbp.target == [target, target] and dmbp.signed.shape == x.shape
    default = Gradient(twin).attribute(x)  # no target: the predicted class's region (methods/target.py)
    assert all(isinstance(t, RegionTarget) and t.pixels > 0 for t in default.target)
    with pytest.raises(InputError, match="outside output shape"):
        Gradient(twin).attribute(x, target=BoxTarget(0, box=(0, 0, 11, 4)))
    with pytest.raises(InputError, match="channel 2 is out of range"):
        Gradient(twin).attribute(x, target=BoxTarget(2))


def test_display_recipes():
    p = np.array([[[0.0, 2.0], [-1.0, 1.0]]])
    q = np.array([[[4.0, 0.0], [0.0, -3.0]]])
    np.testing.assert_allclose(clip_display(p, q, percentile=100.0), [[[-1.0, 0.5], [0.0, 0.25]]])
    # without wrong-sign pixels or outliers the authors' recipe equals the clip display ...
    p, q = np.zeros((1, 50, 50)), np.zeros((1, 50, 50))
    p[0, :10, :10], q[0, 20:30, 20:30] = 1.0, 0.5
    np.testing.assert_allclose(authors_display(p, q), clip_display(p, q, percentile=100.0))
    # ... one wrong-sign pixel in P lifts (tints) the whole background, the clip display does not
    p[0, 49, 49] = -1.0
    assert authors_display(p, q)[0, 40, 0] > 0.4 and clip_display(p, q)[0, 40, 0] == 0
    np.testing.assert_array_equal(clip_display(np.zeros((1, 2)), np.zeros((1, 2))), np.zeros((1, 2)))


def test_clip_display_saturates_hot_pixels():
    p, q = np.zeros((1, 50, 50)), np.zeros((1, 50, 50))
    p[0, :10, :10], p[0, 49, 49], q[0, 20:30, 20:30] = 1.0, 100.0, 0.5
    shown = clip_display(p, q, percentile=99.0)  # the 99th percentile of the pooled values is 1
    assert shown[0, 49, 49] == 1.0 and shown[0, 0, 0] == 1.0 and shown[0, 25, 25] == -0.5
    assert clip_display(p, q, percentile=100.0)[0, 0, 0] == 0.01
    assert clip_display(p, q, percentile=97.0)[0, 25, 25] == -1.0  # the 97th percentile is 0.5: Q saturates
    # a map whose values are almost all zero falls back to its maximum, not to a zero scale
    sparse = np.zeros((1, 50, 50))
    sparse[0, 0, 0] = 2.0
    assert clip_display(sparse, np.zeros_like(sparse))[0, 0, 0] == 1.0


def test_attribution_maps_and_parts():
    signed = torch.tensor([[[[1.0, -2.0]], [[3.0, -4.0]]]])
    a = Attribution.from_signed("gradient", signed, target=[0], score=torch.zeros(1), explains="output")
    np.testing.assert_array_equal(a.pixel_map(), [[[4.0, -6.0]]])
    np.testing.assert_array_equal(a.pixel_map("positive"), [[[4.0, 0.0]]])
    np.testing.assert_array_equal(a.pixel_map("negative"), [[[0.0, -6.0]]])
    top = np.percentile([2.0, 0.0, 0.0, 3.0], DISPLAY_PERCENTILE)  # the clip display's scale
    np.testing.assert_allclose(a.display(), [[[2 / top, -1.0]]], rtol=1e-6)
    with pytest.raises(InputError, match="unknown display recipe"):
        a.display("nope")


def test_options_are_reported(net):
    from dmbp_onnx.methods import IntegratedGradients

    assert DMBP(net[1], iterations=7, device="cpu").options["iterations"] == 7
    assert IntegratedGradients(net[1], steps=5, device="cpu").options == {"device": "cpu", "steps": 5, "baseline": 0.0}


def test_fixed_batch_models_explain_any_batch_size():
    from small_models import conv_net

    model = conv_net()
    model.graph.input[0].type.tensor_type.shape.dim[0].ClearField("dim_param")
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    twin = dmbp_onnx.load(model)
    for x in (torch.randn(1, 3, 8, 8), torch.randn(2, 3, 8, 8)):
        assert dmbp_onnx.Gradient(twin).attribute(x).signed.shape == x.shape
        assert dmbp_onnx.DMBP(twin, iterations=2).attribute(x).signed.shape == x.shape

"""Baselines against Captum on the same twin module, and zennit running on it unchanged."""

from __future__ import annotations

import pytest
import torch
from small_models import export
from torch import nn

import dmbp_onnx
from dmbp_onnx.methods import GradCAM, Gradient, GradientXInput, GuidedBackprop, IntegratedGradients, SmoothGrad
from dmbp_onnx.methods.lrp import MissingDependencyError, import_zennit

captum_attr = pytest.importorskip("captum.attr")
TARGETS = [0, 3, 1]


def _close(ours, theirs):
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-4, atol=1e-6)


def test_gradient_and_gradient_x_input(net, images):
    twin = net[1]
    _close(Gradient(twin).attribute(images, TARGETS).signed,
           captum_attr.Saliency(twin.module).attribute(images, target=TARGETS, abs=False))  # fmt: skip
    result = GradientXInput(twin).attribute(images, TARGETS)
    _close(result.signed, captum_attr.InputXGradient(twin.module).attribute(images, target=TARGETS))
    assert (result.positive >= 0).all() and (result.negative <= 0).all()
    torch.testing.assert_close(result.positive + result.negative, result.signed)


def test_integrated_gradients(net, images):
    twin, steps = net[1], 16
    ours = IntegratedGradients(twin, steps=steps, baseline=0.0).attribute(images, TARGETS)
    theirs = captum_attr.IntegratedGradients(twin.module).attribute(
        images, baselines=0.0, target=TARGETS, n_steps=steps, method="riemann_trapezoid"
    )
    # Captum's trapezoid weights are 1/steps, ours the exact 1/(steps - 1)
    _close(ours.signed, theirs * steps / (steps - 1))
    zero = twin(torch.zeros_like(images))[range(3), TARGETS]
    torch.testing.assert_close(ours.extras["baseline_score"], zero)


def test_guided_backprop(net, images):
    twin = net[1]
    ours = GuidedBackprop(twin).attribute(images, TARGETS)
    assert ours.extras["rectifiers"] == 4
    _close(ours.signed, captum_attr.GuidedBackprop(twin.module).attribute(images, target=TARGETS))
    assert not torch.allclose(ours.signed, Gradient(twin).attribute(images, TARGETS).signed)


def test_guided_backprop_finds_clip_rectifiers():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU6(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    twin = dmbp_onnx.load(export(model, (3, 8, 8)))
    x = torch.randn(2, 3, 8, 8)
    ours = GuidedBackprop(twin).attribute(x, 0)
    assert ours.extras["rectifiers"] == 1
    plain = Gradient(twin).attribute(x, 0).signed
    assert not torch.allclose(ours.signed, plain)


def test_gradcam(net, images):
    twin = net[1]
    ours = GradCAM(twin).attribute(images, TARGETS)
    site = twin.module.get_submodule(twin.mask_sites[2].name)
    assert ours.extras["layer"] == twin.mask_sites[2].name
    theirs = captum_attr.LayerGradCam(twin.module, site).attribute(images, target=TARGETS)
    _close(ours.extras["cam"], theirs[:, 0])
    assert ours.signed.shape == images.shape
    up = torch.nn.functional.interpolate(theirs, size=(12, 12), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(torch.from_numpy(ours.pixel_map()), up.detach(), rtol=1e-4, atol=1e-6)
    first = GradCAM(twin, layer=twin.mask_sites[0].onnx_node).attribute(images, TARGETS)
    assert first.extras["cam"].shape == (3, 12, 12)


def test_smoothgrad(net, images):
    twin = net[1]
    plain = Gradient(twin).attribute(images, TARGETS).signed
    torch.testing.assert_close(SmoothGrad(twin, samples=2, sigma=0.0).attribute(images, TARGETS).signed, plain)
    a = SmoothGrad(twin, samples=4, sigma=0.2, seed=1).attribute(images, TARGETS).signed
    b = SmoothGrad(twin, samples=4, sigma=0.2, seed=1).attribute(images, TARGETS).signed
    assert torch.equal(a, b) and not torch.allclose(a, plain)


def test_zennit_runs_on_the_twin_module(net, images):
    try:
        zennit = import_zennit()
    except MissingDependencyError:
        pytest.skip("zennit is not installed")
    twin = net[1]
    with zennit.attribution.Gradient(model=twin.module, composite=zennit.composites.EpsilonPlusFlat()) as attributor:
        out, relevance = attributor(images, torch.eye(5)[TARGETS])
    assert relevance.shape == images.shape and torch.isfinite(relevance).all()
    assert relevance.abs().sum() > 0
    torch.testing.assert_close(out, twin(images))
    # the hooks are gone again: the plain gradient is back
    _close(Gradient(twin).attribute(images, TARGETS).signed,
           captum_attr.Saliency(twin.module).attribute(images, target=TARGETS, abs=False))  # fmt: skip

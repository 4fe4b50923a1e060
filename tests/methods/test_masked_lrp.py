"""LRP's Gamma rule inside the masked backward: with masks at 1 it is zennit's LRP, and its mask
gradients are exact (the mapping is linear in each site's masks)."""

from __future__ import annotations

import pytest
import torch
from small_models import export
from torch import nn

import dmbp_onnx
from dmbp_onnx.methods.masked import MaskedMapping
from dmbp_onnx.methods.masked.lrp import GAMMA, LRP_GAMMA, GammaConvRule
from dmbp_onnx.methods.target import resolve_targets
from dmbp_onnx.twin.canonical import canonicalize


def head_net() -> nn.Sequential:
    """A convolution whose output feeds no ReLU (both Gamma branches), with a batch norm to fold."""
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 8 * 8, 3),
    ).eval()  # fmt: skip


def zennit_gamma(zennit, module: nn.Module, x: torch.Tensor, target: list[int]) -> torch.Tensor:
    """zennit: Epsilon on the first convolution, Gamma(GAMMA) on the others, Epsilon on linear layers,
    relevance starting at the target logit."""
    rules = zennit.rules
    composite = zennit.composites.SpecialFirstLayerMapComposite(
        layer_map=[(zennit.types.Activation, rules.Pass()), (zennit.types.Convolution, rules.Gamma(gamma=GAMMA)),
                   (torch.nn.Linear, rules.Epsilon())],
        first_map=[(zennit.types.Convolution, rules.Epsilon())],
    )  # fmt: skip
    x = x.clone().requires_grad_(True)
    with composite.context(module) as hooked:
        out = hooked(x)
        start = torch.zeros_like(out)
        rows = torch.arange(len(x))
        start[rows, target] = out.detach()[rows, target]
        (relevance,) = torch.autograd.grad(out, x, grad_outputs=start)
    return relevance


@pytest.mark.parametrize("which", ["small_net", "head_net"])
def test_unit_masks_give_zennit_gamma(zennit, net, which):
    shape = (3, 12, 12) if which == "small_net" else (3, 8, 8)
    twin = net[1] if which == "small_net" else dmbp_onnx.load(export(head_net(), shape))
    x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(5))
    module = canonicalize(twin, x).module
    targets = [0, 2, 1]
    mapping = MaskedMapping(module, x, lambda out: resolve_targets(out, targets)[1], rules=LRP_GAMMA)
    assert any(isinstance(rule, GammaConvRule) for rule in mapping._rule.values())
    ours = mapping(None) * x
    theirs = zennit_gamma(zennit, module, x, targets)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4 * float(theirs.abs().max()))  # epsilon 1e-6 vs gradient


def test_mask_gradients_are_exact(net, images):
    """W_m is linear in each site's masks: d <W_m, G> / d m_l[k] = <W_m(m_l[k]=1) - W_m(m_l[k]=0), G>."""
    _, twin = net
    module = canonicalize(twin, images).module
    mapping = MaskedMapping(module, images, lambda out: resolve_targets(out, None)[1], rules=LRP_GAMMA)
    generator = torch.Generator().manual_seed(2)
    masks = {k: torch.rand(len(images), c, generator=generator) for k, c in mapping.channels.items()}
    tangent = torch.randn(images.shape, generator=generator)
    mapping(masks)
    found = mapping.mask_gradients(tangent, masks)
    for site in list(masks)[1:]:
        for k in (0, 3):
            ends = []
            for value in (1.0, 0.0):
                changed = {name: m.clone() for name, m in masks.items()}
                changed[site][:, k] = value
                ends.append((mapping(changed) * tangent).flatten(1).sum(1))
            torch.testing.assert_close(found[site][:, k], ends[0] - ends[1], rtol=1e-4, atol=1e-6)

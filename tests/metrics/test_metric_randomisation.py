"""Cascading model randomisation: model-dependent maps change, model-blind maps do not."""

import numpy as np
import pytest
import torch

from dmbp_onnx.metrics import model_randomisation, parameterised_layers, rankdata, spearman


def gradient_map(twin, x, targets):
    """Gradient of the target logit, summed over channels (depends on the weights only)."""
    x = x.clone().requires_grad_(True)
    out = twin(x).reshape(len(x), -1)
    out[torch.arange(len(x)), torch.as_tensor(targets)].sum().backward()
    return x.grad.sum(dim=1)


def input_map(twin, x, targets):
    """The input itself: ignores the model."""
    return x.sum(dim=1)


def test_layers_are_randomised_top_down(two_layer):
    assert [node for _, node in parameterised_layers(two_layer)] == ["conv1", "conv2"]
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 3, 12, 12)).astype(np.float32))
    steps = model_randomisation(two_layer, gradient_map, x, [0, 1, 0, 1], seed=0)
    assert [s.onnx_node for s in steps] == ["conv2", "conv1"]
    for step in steps:
        assert step.mean_signed < 0.5 and step.mean_abs < 0.6
    blind = model_randomisation(two_layer, input_map, x, [0, 1, 0, 1], seed=0)
    for step in blind:
        np.testing.assert_allclose(step.spearman_abs, 1.0)
        np.testing.assert_allclose(step.spearman_signed, 1.0)


def test_caller_twin_is_untouched_and_runs_are_seeded(two_layer):
    before = {k: v.clone() for k, v in two_layer.module.state_dict().items()}
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32))
    a = model_randomisation(two_layer, gradient_map, x, [0, 1], seed=3)
    b = model_randomisation(two_layer, gradient_map, x, [0, 1], seed=3)
    c = model_randomisation(two_layer, gradient_map, x, [0, 1], seed=4)
    for key, value in two_layer.module.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    np.testing.assert_array_equal(a[-1].spearman_signed, b[-1].spearman_signed)
    assert not np.array_equal(a[-1].spearman_signed, c[-1].spearman_signed)


def test_rank_helpers():
    np.testing.assert_array_equal(rankdata(np.array([10.0, 20.0, 20.0, 5.0])), [2.0, 3.5, 3.5, 1.0])
    values = np.random.default_rng(0).standard_normal(50)
    assert spearman(values, np.exp(values)) == pytest.approx(1.0)
    assert spearman(values, -values**3) == pytest.approx(-1.0)
    assert np.isnan(spearman(np.ones(5), values[:5]))

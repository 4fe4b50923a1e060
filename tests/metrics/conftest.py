"""Linear and two-layer conv twins for the metric tests, and their exact maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper

from oracle import check_twin, float_input, init, make_model

C, H, W = 3, 12, 12


def linear_model(n_out: int = 1, seed: int = 0, bias: float = 0.5):
    """Conv with a full-size kernel: output[k] = sum(w[k] * x) + b[k], shape (N, n_out, 1, 1)."""
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((n_out, C, H, W)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="dense_conv")]
    inits = [init("w", weight), init("b", np.full(n_out, bias, np.float32))]
    model = make_model(
        nodes, [float_input("x", ["N", C, H, W])], [float_input("y", ["N", n_out, 1, 1])], inits
    )
    return model, weight


class Linear:
    """A one-output linear model: its twin, weights and exact per-pixel contributions."""

    def __init__(self) -> None:
        model, weight = linear_model()
        self.twin = check_twin(model)
        self.weight = torch.from_numpy(weight[0])
        self.bias = 0.5

    def contributions(self, x: torch.Tensor, baseline: torch.Tensor | float = 0.0) -> torch.Tensor:
        """Exact per-pixel share of ``score(x) - score(baseline)``, summed over channels (N, H, W)."""
        return (self.weight * (x - baseline)).sum(dim=1)

    def score_fn(self, channel_axis: int = 1):
        """A plain score function of the same model for NCHW (1) or NHWC (-1) inputs."""
        w = self.weight if channel_axis == 1 else self.weight.permute(1, 2, 0)

        def score(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return (x * w).sum(dim=(1, 2, 3)) + self.bias

        return score


@pytest.fixture(scope="module")
def linear() -> Linear:
    """The linear model, checked by the oracle."""
    return Linear()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Eight seeded NCHW images."""
    return torch.from_numpy(np.random.default_rng(1).standard_normal((8, C, H, W)).astype(np.float32))


def two_layer_model():
    """Conv 3->4 (3x3, pad 1) -> Relu -> Conv 4->2 with a full-size kernel, output (N, 2, 1, 1)."""
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu1"),
        helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="conv2"),
    ]
    inits = [
        init("w1", rng.standard_normal((4, C, 3, 3)).astype(np.float32)),
        init("b1", rng.standard_normal(4).astype(np.float32) * 0.1),
        init("w2", rng.standard_normal((2, 4, H, W)).astype(np.float32)),
        init("b2", np.zeros(2, np.float32)),
    ]
    return make_model(nodes, [float_input("x", ["N", C, H, W])], [float_input("y", ["N", 2, 1, 1])], inits)


@pytest.fixture(scope="module")
def two_layer():
    """Twin of :func:`two_layer_model`, checked by the oracle."""
    return check_twin(two_layer_model())

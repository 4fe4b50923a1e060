"""Small ReLU CNNs built in torch, exported to ONNX bytes and loaded as twins (shared by the method tests)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dmbp_onnx
from small_models import export


def small_net() -> nn.Sequential:
    """Conv-ReLU-MaxPool-Conv-ReLU-Conv-ReLU-Flatten-Linear-ReLU-Linear on 3x12x12 inputs, 5 classes."""
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 3 * 3, 16), nn.ReLU(), nn.Linear(16, 5),
    ).eval()  # fmt: skip


@pytest.fixture(scope="session")
def net():
    """``(torch model, twin)`` of :func:`small_net`."""
    model = small_net()
    return model, dmbp_onnx.load(export(model, (3, 12, 12)))


@pytest.fixture
def images():
    """Three seeded 3x12x12 inputs."""
    return torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(7))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest single-threaded (and do not stall on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def zennit():
    """zennit, imported through the project's shim (the test skips where it is not installed)."""
    from dmbp_onnx.methods import lrp as lrp_module

    try:
        return lrp_module.import_zennit()
    except lrp_module.MissingDependencyError:
        pytest.skip("zennit is not installed")

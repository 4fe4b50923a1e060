"""Whole models exported from torch (legacy and dynamo exporters): twin == onnxruntime == torch."""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
import pytest
import torch
from oracle import check_twin

from models import architectures as arch
from models.export import export_onnx

# name -> (factory, input shape without the batch axis); together they cover VGG-ish, residual
# (basic and bottleneck), concat branches, depthwise, dilated, 1-D, BN folded/unfolded, ReLU6,
# LeakyReLU, MaxPool ceil_mode, AvgPool, adaptive avg pool, nearest/bilinear upsample, softmax head.
NETS: dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, ...]]] = {
    "tiny_vgg": (arch.tiny_vgg, (3, 14, 14)),
    "tiny_resnet": (arch.tiny_resnet, (3, 32, 32)),
    "tiny_resnet_bottleneck": (lambda: arch.tiny_resnet(bottleneck=True), (3, 32, 32)),
    "concat_branches": (arch.ConcatBranches, (3, 16, 16)),
    "depthwise": (arch.DepthwiseNet, (3, 16, 16)),
    "dilated_upsample": (arch.DilatedSegNet, (3, 16, 16)),
    "conv1d": (arch.Conv1dNet, (2, 32)),
    "unfolded_bn": (arch.UnfoldedBNNet, (3, 16, 16)),
}

# variant -> export_onnx keyword arguments
VARIANTS: dict[str, dict] = {
    "legacy": dict(exporter="legacy"),
    "legacy_nofold": dict(exporter="legacy", fold_constants=False),
    "legacy_preserve": dict(exporter="legacy", preserve_training_mode=True),
    "dynamo": dict(exporter="dynamo"),
    "dynamo_raw20": dict(exporter="dynamo", opset=20, optimize=False),
}

# the dynamo exporter takes seconds per model: run it on the nets whose graphs it writes differently
# (without its optimiser, a bias-free convolution gets its zero bias as CastLike + Expand)
DYNAMO_NETS = {
    "dynamo": ("tiny_vgg", "tiny_resnet", "depthwise", "dilated_upsample", "conv1d"),
    "dynamo_raw20": ("tiny_resnet",),
}

CASES = [(net, variant) for net in NETS for variant in VARIANTS if net in DYNAMO_NETS.get(variant, NETS)]


class ExportCache:
    """Builds each net once (seeded, random BN statistics) and exports it once per variant."""

    def __init__(self) -> None:
        self._nets: dict[str, torch.nn.Module] = {}
        self._models: dict[tuple[str, str], onnx.ModelProto] = {}

    def net(self, name: str) -> torch.nn.Module:
        """The eval-mode torch module ``name``."""
        if name not in self._nets:
            torch.manual_seed(sum(map(ord, name)))
            self._nets[name] = arch.randomize_batchnorm(NETS[name][0](), seed=len(name))
        return self._nets[name]

    def onnx(self, name: str, variant: str) -> onnx.ModelProto:
        """``name`` exported with ``variant``, batch axis dynamic (example batch of 2)."""
        key = (name, variant)
        if key not in self._models:
            example = torch.randn(2, *NETS[name][1], generator=torch.Generator().manual_seed(1))
            self._models[key] = export_onnx(self.net(name), example, **VARIANTS[variant])
        return self._models[key]


@pytest.fixture(scope="session")
def exports() -> ExportCache:
    """Session-wide cache of torch nets and their ONNX exports."""
    return ExportCache()


def _ops(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node}


@pytest.mark.parametrize(("net", "variant"), CASES, ids=[f"{n}-{v}" for n, v in CASES])
def test_twin_equals_torch_and_onnxruntime(exports: ExportCache, net: str, variant: str) -> None:
    model = exports.onnx(net, variant)
    batch_dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.HasField("dim_value"), "batch axis must be dynamic"
    torch_net = exports.net(net)
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, *NETS[net][1])).astype(np.float32)
        with torch.no_grad():
            expected = torch_net(torch.from_numpy(x)).numpy()
        twin = check_twin(model, [x], expected=[expected])
        assert twin(torch.from_numpy(x)).shape == expected.shape


def test_exports_cover_batchnorm_folded_and_unfolded(exports: ExportCache) -> None:
    assert "BatchNormalization" not in _ops(exports.onnx("tiny_resnet", "legacy"))
    assert "BatchNormalization" in _ops(exports.onnx("tiny_resnet", "legacy_nofold"))
    assert "BatchNormalization" in _ops(exports.onnx("tiny_resnet", "legacy_preserve"))
    assert "BatchNormalization" in _ops(exports.onnx("unfolded_bn", "legacy"))


def test_exports_cover_the_listed_ops(exports: ExportCache) -> None:
    ops = set().union(*(_ops(exports.onnx(n, v)) for n, v in CASES if not v.startswith("dynamo")))
    listed = {"Conv", "Relu", "Clip", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "Add",
              "Concat", "Resize", "Gemm", "Flatten", "Softmax", "BatchNormalization"}
    assert listed <= ops, f"missing {sorted(listed - ops)}"
    pool = next(n for n in exports.onnx("tiny_vgg", "legacy").graph.node if n.op_type == "MaxPool")
    assert any(a.name == "ceil_mode" and a.i == 1 for a in pool.attribute)


def test_unoptimised_dynamo_export_covers_cast_like_and_expand(exports: ExportCache) -> None:
    assert {"CastLike", "Expand"} <= _ops(exports.onnx("tiny_resnet", "dynamo_raw20"))


def test_softmax_head_is_split_off(exports: ExportCache) -> None:
    twin = check_twin(exports.onnx("tiny_vgg", "legacy"))
    assert twin.output_activation == ("Softmax", 1)
    x = torch.randn(2, *NETS["tiny_vgg"][1])
    with torch.no_grad():
        np.testing.assert_allclose(twin.forward_declared(x)[0].sum(1).numpy(), 1.0, rtol=1e-5)
        assert not torch.allclose(twin(x).sum(1), torch.ones(2))

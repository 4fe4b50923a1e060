"""Export a small ReLU CNN with both PyTorch ONNX exporters (dynamo and legacy).

Run in the project venv (torch 2.13 CPU + onnxscript)::

    /work/venv/bin/python converters/torch_export.py

Writes ``torch_dynamo_cnn``, ``torch_legacy_cnn`` and ``torch_legacy_bn_cnn``
(legacy exporter with BatchNormalization kept) into tests/fixtures/foreign/.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import torch
from torch import nn

from _common import parse_args, save_fixture, seed_everything


class SmallCNN(nn.Module):
    """Conv-BN-ReLU-MaxPool, Conv-BN-ReLU6-AvgPool, strided Conv-ReLU, global pool, MLP head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU6(),
            nn.AvgPool2d(2),
            nn.Conv2d(16, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features(x)), 1))


def build(seed: int) -> SmallCNN:
    """The seeded CNN in eval mode, with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = SmallCNN()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(0.1 * torch.randn(n))
            module.running_var.copy_(0.5 + torch.rand(n))
            module.weight.data.copy_(1.0 + 0.2 * torch.randn(n))
            module.bias.data.copy_(0.1 * torch.randn(n))
    return model.eval()


def export_dynamo(model: nn.Module, x: torch.Tensor) -> onnx.ModelProto:
    """The default (dynamo) exporter, dynamic batch, weights inline."""
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.onnx.export(
        model, (x,), input_names=["input"], output_names=["logits"],
        dynamic_shapes=({0: batch},), dynamo=True, external_data=False, verbose=False,
    )
    return program.model_proto


def export_legacy(model: nn.Module, x: torch.Tensor, keep_bn: bool) -> onnx.ModelProto:
    """The legacy TorchScript exporter; ``keep_bn`` turns constant folding and BN fusion off."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (x,), buffer, dynamo=False, opset_version=17,
            input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            do_constant_folding=not keep_bn,
            training=torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL,
        )
    return onnx.load_model_from_string(buffer.getvalue())


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    torch.set_num_threads(1)
    rng = seed_everything(args.seed)
    model = build(args.seed)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).numpy()
    arrays = {"input": x, "output": y}
    xt = torch.from_numpy(x)
    save_fixture("torch_dynamo_cnn", export_dynamo(model, xt), arrays, args.out_dir)
    save_fixture("torch_legacy_cnn", export_legacy(model, xt, keep_bn=False), arrays, args.out_dir)
    save_fixture("torch_legacy_bn_cnn", export_legacy(model, xt, keep_bn=True), arrays, args.out_dir)


if __name__ == "__main__":
    main()

"""Export a small Paddle ReLU CNN with paddle2onnx.

Run in a separate venv (``pip install paddlepaddle paddle2onnx``)::

    /work/venv-paddle/bin/python converters/paddle_export.py

Saves the layer with ``paddle.jit.save`` (PIR program + params), then writes
``paddle_cnn`` into tests/fixtures/foreign/. paddle2onnx 2.1 emits every weight
as a Constant node (no initializers), with or without ``enable_optimize``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
import paddle
import paddle2onnx
from paddle import nn

from _common import parse_args, save_fixture, seed_everything


class PaddleCNN(nn.Layer):
    """Conv-BN-ReLU-MaxPool, Conv-BN-ReLU6-AvgPool, strided Conv-ReLU, Flatten, Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2D(3, 8, 3, padding=1),
            nn.BatchNorm2D(8),
            nn.ReLU(),
            nn.MaxPool2D(2),
            nn.Conv2D(8, 16, 3, padding=1),
            nn.BatchNorm2D(16),
            nn.ReLU6(),
            nn.AvgPool2D(2),
            nn.Conv2D(16, 16, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.head(self.features(x))


def build(seed: int, rng: np.random.Generator) -> PaddleCNN:
    """The seeded layer in eval mode, with non-trivial biases and BatchNorm statistics."""
    paddle.seed(seed)
    model = PaddleCNN()
    for layer in model.sublayers():
        if isinstance(layer, (nn.Conv2D, nn.Linear)):
            layer.bias.set_value((0.1 * rng.standard_normal(layer.bias.shape)).astype(np.float32))
        elif isinstance(layer, nn.BatchNorm2D):
            n = layer.weight.shape[0]
            layer._mean.set_value((0.1 * rng.standard_normal(n)).astype(np.float32))
            layer._variance.set_value((0.5 + rng.random(n)).astype(np.float32))
            layer.weight.set_value((1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32))
            layer.bias.set_value((0.1 * rng.standard_normal(n)).astype(np.float32))
    model.eval()
    return model


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    paddle.set_device("cpu")
    rng = seed_everything(args.seed)
    model = build(args.seed, rng)
    x = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    y = model(paddle.to_tensor(x)).numpy()
    arrays = {"input": x, "output": y}
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "cnn")
        spec = [paddle.static.InputSpec([None, 3, 32, 32], "float32", "input")]
        paddle.jit.save(model, prefix, input_spec=spec)
        program = next(p for p in Path(tmp).iterdir() if p.suffix in (".json", ".pdmodel"))
        blob = paddle2onnx.export(str(program), prefix + ".pdiparams", opset_version=13)
    save_fixture("paddle_cnn", onnx.load_model_from_string(blob), arrays, args.out_dir)


if __name__ == "__main__":
    logging.getLogger().setLevel(logging.ERROR)
    main()

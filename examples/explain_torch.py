"""Explain a native PyTorch model: ``dmbp_onnx.from_torch`` exports it, rebuilds it and checks it.

The twin is compared with the live module's own output on the example batch (a
``MismatchError`` if the export changed the function); then DMBP and a baseline explain it,
and each map is written as an overlay PNG.

Usage: ``python examples/explain_torch.py [--out DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn

import dmbp_onnx
from dmbp_onnx import viz


def small_cnn() -> nn.Module:
    """A ReLU CNN for 3 x 32 x 32 images and 4 classes (untrained: the point is the plumbing)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
    )  # fmt: skip


def main() -> None:
    """Build the twin, explain two images with DMBP and Gradient x Input, write the overlays."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("torch_explained"), help="output folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    net = small_cnn().eval()
    x = torch.rand(2, 3, 32, 32)
    twin = dmbp_onnx.from_torch(net, x)  # raises MismatchError if the twin differs from net(x)
    print(twin)
    for method in (dmbp_onnx.DMBP(twin, iterations=5), dmbp_onnx.GradientXInput(twin)):
        result = method.attribute(x)  # target None: each image's predicted class
        for k, heat in enumerate(result.display()):
            image = x[k].permute(1, 2, 0).numpy()
            title = f"{result.method}: class {result.target[k]}, score {float(result.score[k]):.3g}"
            path = viz.overlay_png(image, np.asarray(heat), args.out / f"image{k}.{result.method}.png", title)
            print(f"{result.method:>10}  image {k}  class {result.target[k]}  -> {path}")


if __name__ == "__main__":
    main()

"""The multi-output and dynamic-height/width fixture family, built in torch and exported in the tests.

* :class:`ONet`: a face classifier with two heads, box regression ``(N, 4)`` first and the
  face probability ``(N, 2)`` (a Softmax) second, as MTCNN's O-Net;
* :class:`PNet`: fully convolutional, any height and width: a face-probability map
  ``(N, 2, h, w)`` (a Softmax over channels) and a box map ``(N, 4, h, w)``, as MTCNN's P-Net;
* :class:`TinyUNet`: a segmentation head, 3-class logits ``(N, 3, H, W)``, dynamic H and W.

:func:`export_family` exports one with the legacy exporter (names, dynamic axes) and returns
the ModelProto and the torch outputs on a seeded example.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import torch
from torch import nn


class ONet(nn.Module):
    """Conv-PReLU stack, then a box head (first output) and a face-probability head (second)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.PReLU(8), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(16 * 4 * 4, 32), nn.ReLU(),
        )  # fmt: skip
        self.box = nn.Linear(32, 4)
        self.face = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return self.box(h), torch.softmax(self.face(h), dim=1)


class PNet(nn.Module):
    """Fully convolutional: a face-probability map (first output) and a box map (second)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(8, 12, 3), nn.ReLU(), nn.Conv2d(12, 16, 3), nn.ReLU(),
        )  # fmt: skip
        self.face = nn.Conv2d(16, 2, 1)
        self.box = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x)
        return torch.softmax(self.face(h), dim=1), self.box(h)


class TinyUNet(nn.Module):
    """One down and one up level with a skip connection; 3-class logits per pixel."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.down = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.bottom = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.down(x)
        return self.head(torch.cat([skip, self.up(self.bottom(skip))], dim=1))


#: name -> (module factory, example input shape, output names, dynamic spatial axes)
FAMILY = {
    "onet": (ONet, (2, 3, 24, 24), ["box", "prob"], False),
    "pnet": (PNet, (2, 3, 20, 26), ["prob", "box"], True),
    "unet": (TinyUNet, (2, 3, 16, 16), ["logits"], True),
}


def export_family(name: str, seed: int = 0) -> tuple[onnx.ModelProto, np.ndarray, list[np.ndarray]]:
    """Export family member ``name``; returns the model, a seeded example and torch's outputs on it."""
    factory, shape, outputs, dynamic_hw = FAMILY[name]
    torch.manual_seed(seed)
    net = factory().eval()
    x = torch.randn(*shape)
    spatial = {2: "height", 3: "width"} if dynamic_hw else {}
    axes = {"x": {0: "batch", **spatial}, **{o: {0: "batch"} for o in outputs}}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), buffer, dynamo=False, opset_version=17, input_names=["x"],
                          output_names=outputs, dynamic_axes=axes)  # fmt: skip
    with torch.no_grad():
        result = net(x)
    result = result if isinstance(result, tuple) else (result,)
    return onnx.load_model_from_string(buffer.getvalue()), x.numpy(), [r.numpy() for r in result]

"""The shipped demo model and sample image, used when the request names none."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path


def default_model() -> Path:
    """Path of the shipped demo model."""
    return Path(str(resources.files("dmbp_onnx") / "data" / "demo.onnx"))


def default_image() -> Path:
    """Path of the first shipped sample image of the demo model."""
    data = resources.files("dmbp_onnx") / "data"
    samples = json.loads((data / "samples.json").read_text())
    first = samples[0] if isinstance(samples, list) else samples["samples"][0]
    return Path(str(data / first["image"]))

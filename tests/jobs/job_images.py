"""Tiny images and a cheap job spec on the shipped demo model, for the dataset-job tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from dmbp_onnx.explain.defaults import default_model
from dmbp_onnx.jobs.spec import JobSpec


def write_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` distinct random 12x12 RGB PNGs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(count):
        path = folder / f"img{k:03d}.png"
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def make_spec(out: Path, **overrides) -> JobSpec:
    """Gradient x Input on the demo model, arrays only, batches of 4."""
    options = {"model": str(default_model()), "out": str(out), "methods": ("gradxinput",),
               "figures": False, "batch_size": 4, "device": "cpu", **overrides}
    return JobSpec(**options)

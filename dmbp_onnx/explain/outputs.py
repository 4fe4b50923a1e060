"""Per image: the figures and arrays of every method, and the image's report entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmbp_onnx.explain.boxes import _draw_box, _output_box
from dmbp_onnx.explain.report import _jsonable
from dmbp_onnx.explain.targets import _target_label

#: Percentile of each of the positive and negative pixel maps drawn at full colour in its panel.
PANEL_PERCENTILE = 99.0


def _evidence(attribution, k: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """Positive and negative pixel maps of image ``k`` at ``size`` in [0, 1], and the negative map's
    share of the pair's mass.

    Each map is scaled by its own :data:`PANEL_PERCENTILE`-th percentile (its maximum when that is 0),
    so a few hot pixels saturate instead of washing out the rest, and a negative map far weaker than
    the positive one is still visible: the panels' labels give each map's share of the mass, so the
    two scales are never mistaken for one.
    """
    from dmbp_onnx.preprocess import resize_map

    maps = (np.maximum(attribution.pixel_map("positive")[k], 0.0), np.maximum(-attribution.pixel_map("negative")[k], 0.0))
    total = float(maps[0].sum() + maps[1].sum()) or 1.0
    scaled = []
    for m in maps:
        scale = float(np.percentile(m, PANEL_PERCENTILE)) or float(m.max()) or 1.0
        scaled.append(resize_map(np.minimum(m / scale, 1.0), size))
    return scaled[0], scaled[1], float(maps[1].sum()) / total


def _write_outputs(out: Path, stem: str, path: Path, array: np.ndarray, original: np.ndarray, k: int,
                   attributions: dict, target, output_shape, score: float, probs, class_names,
                   display: str, index: int | None, figures: bool = True) -> dict[str, Any]:
    """Figures and arrays of one image for every method; its entry of the report.

    With ``figures=False`` only the arrays are written (dataset jobs run with ``--no-figures``).
    """
    from dmbp_onnx import viz
    from dmbp_onnx.preprocess import resize_map

    size = original.shape[:2]
    name, label = _target_label(target, class_names)
    probability = float(probs[target]) if probs is not None and isinstance(target, int) else None
    headline = f"target {label} · score {score:.3g}" + ("" if probability is None else f" · p={probability:.3f}")
    picture = _draw_box(original, _output_box(target, output_shape, size))
    files: dict[str, str] = {}
    heats: dict[str, np.ndarray] = {}
    per_method: dict[str, dict[str, Any]] = {}
    for method, attribution in attributions.items():
        heat = resize_map(attribution.display(display)[k], size)
        heats[method] = heat
        title = f"{method} · {headline}"
        if figures:
            positive, negative, share = _evidence(attribution, k, size)
            files[f"{method}_overlay"] = str(viz.overlay_png(picture, heat, out / f"{stem}.{method}.overlay.png",
                                                             title))
            labels = (f"positive (for): {1 - share:.0%} of the mass", f"negative (against): {share:.0%}, own scale")
            files[f"{method}_panel"] = str(viz.panel_png(picture, positive, negative, heat,
                                                         out / f"{stem}.{method}.panel.png", title, labels))
        arrays = {"input": array[0], "signed": attribution.signed[k].numpy(),
                  "positive": attribution.positive[k].numpy(), "negative": attribution.negative[k].numpy(),
                  "display": heat}
        if figures:  # the picture under the maps, for report.html
            arrays["image"] = np.round(picture * 255).astype(np.uint8)
        history = attribution.extras.get("loss_history")
        if isinstance(history, torch.Tensor) and history.numel():
            arrays["loss_history"] = history[:, k].numpy()
            per_method[method] = {"final_loss": float(history[-1, k])}
        magnitudes = attribution.extras.get("magnitudes")
        if isinstance(magnitudes, dict):
            per_method.setdefault(method, {})["magnitudes"] = {m: v[k].item() for m, v in magnitudes.items()}
        npz = out / f"{stem}.{method}.npz"
        np.savez_compressed(npz, **arrays)
        files[f"{method}_arrays"] = str(npz)
    if figures and len(attributions) > 1:
        files["comparison"] = str(viz.comparison_png(picture, heats, out / f"{stem}.comparison.png", headline))
    return {
        "input": str(path),
        "index": index,
        "target": target if isinstance(target, int) else _jsonable(target),
        "target_name": name,
        "target_label": label,
        "score": score,
        "probability": probability,
        "probabilities": None if probs is None else probs.tolist(),
        "methods": per_method,
        "files": files,
    }

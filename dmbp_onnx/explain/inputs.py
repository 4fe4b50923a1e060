"""The job's inputs: images or a preprocessed array, their output stems, and their batches."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from dmbp_onnx.errors import InputError
from dmbp_onnx.explain.defaults import default_image

if TYPE_CHECKING:
    from dmbp_onnx.explain.request import ExplainRequest

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def collect_images(paths: Sequence[Path]) -> list[Path]:
    """Expand folders into their image files (sorted by name); missing paths are an error."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                raise InputError(f"folder '{path}' contains no image files ({', '.join(IMAGE_SUFFIXES)})")
            found.extend(inside)
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"image '{path}' does not exist")
    return found


def _preprocess_config(twin, request: ExplainRequest):
    """The preprocessing configuration, and what the output holds (logits, probabilities or map).

    The layout is the twin's (the one decision, :mod:`dmbp_onnx.graph.layout`, which
    ``--layout`` already overrode when the twin was loaded). With ``--input-npy`` the
    declared shape is not read (the array is the model's input as is: any channel count).
    """
    from dmbp_onnx.preprocess import LAYOUTS, PreprocessConfig

    layout = twin.layout if twin.layout in LAYOUTS else request.layout
    overrides = {"layout": layout, "size": request.size, "scale": request.scale,
                 "mean": request.mean, "std": request.std}
    shape = twin.inputs[0].shape or ()
    if request.input_npy is not None:  # already preprocessed: only metadata (class names, output kind) applies
        shape = [None] * len(shape)
    config = PreprocessConfig.from_model(twin.model, declared_input_shape=shape, **overrides)
    return config, config.output


def _load_items(request: ExplainRequest, twin, config) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """``(path, model input (1, ...), RGB picture in [0, 1])`` per image."""
    from dmbp_onnx.preprocess import load_image, load_npy

    if request.input_npy is not None:
        array = load_npy(request.input_npy, twin.inputs[0].shape or ())
        return [(request.input_npy, a[None], _display_image(a, twin.channel_axis)) for a in array]
    if not request.images and request.model is not None:
        raise InputError("no images given: pass image files or folders after the model, or --input-npy")
    items = []
    for path in collect_images(request.images or [default_image()]):
        loaded = load_image(path, config)
        items.append((path, loaded.array, loaded.original))
    return items


def _display_image(array: np.ndarray, channel_axis: int | None) -> np.ndarray:
    """An RGB picture in [0, 1] of one preprocessed input (for ``--input-npy``), min-max scaled."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 3 and channel_axis is not None:
        a = np.moveaxis(a, channel_axis - 1 if channel_axis > 0 else channel_axis, -1)
    elif a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    a = a[..., :3]
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _unique_stems(paths: Sequence[Path]) -> list[str]:
    """File-name stems for the outputs: the input's stem, numbered when it repeats."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    seen: dict[str, int] = {}
    stems = []
    for p in paths:
        if counts[p.stem] == 1:
            stems.append(p.stem)
        else:
            seen[p.stem] = seen.get(p.stem, 0) + 1
            stems.append(f"{p.stem}_{seen[p.stem]}")
    return stems


def _batches(items: list, size: int):
    """``(start, batch)`` of at most ``size`` consecutive items of one input shape."""
    start = 0
    while start < len(items):
        end = start + 1
        while end < len(items) and end - start < size and items[end][1].shape == items[start][1].shape:
            end += 1
        yield start, items[start:end]
        start = end

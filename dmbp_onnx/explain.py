"""The ``explain`` job: model + images -> attribution maps, figures, arrays and a JSON report.

The CLI only parses arguments into an :class:`ExplainRequest`; everything else
happens here so the same job runs from Python::

    from dmbp_onnx.explain import ExplainRequest, explain
    report = explain(ExplainRequest(model=Path("net.onnx"), images=[Path("cat.png")]))

Per image and method it writes ``STEM.METHOD.overlay.png`` (signed map over the image,
diverging colormap centred at 0, colour bar), ``STEM.METHOD.panel.png`` (image, positive,
negative, signed), ``STEM.METHOD.npz`` (raw arrays) and, with several methods,
``STEM.comparison.png``; then ``report.json`` for the whole run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from dmbp_onnx.errors import InputError, MismatchError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: Colour of the explained box drawn on map models' images (RGB in [0, 1]).
BOX_COLOUR = (1.0, 0.85, 0.0)
#: Percentile of the pooled positive and negative pixel maps drawn at full colour in the panels.
PANEL_PERCENTILE = 99.0


@dataclass
class ExplainRequest:
    """Everything the explain job needs; ``None`` means "use the default".

    Attributes
    ----------
    model : pathlib.Path or None
        ONNX file; ``None`` = the shipped demo model.
    images : list of pathlib.Path
        Image files or folders; empty = a shipped sample image (demo model only).
    input_npy : pathlib.Path or None
        A preprocessed array in the model's layout, instead of images.
    target : str
        ``"auto"`` (predicted class; channel 0 for map outputs), a class index or a class name.
    box : tuple of int or None
        ``(y0, x0, y1, x1)`` in output-map coordinates, for map outputs.
    methods : list of str
        Method CLI names (:data:`dmbp_onnx.methods.METHODS`).
    iterations : int or None
        DMBP iterations (``None``: the method's default).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size : int
        Images per batch (validation and attribution); a model declaring a fixed batch uses that.
    out : pathlib.Path
        Output folder.
    size, layout, scale, mean, std
        Preprocessing overrides (see :mod:`dmbp_onnx.preprocess`).
    display : str
        Display recipe of the signed map (``"clip"`` or ``"authors"``).
    force : bool
        Explain even when the twin disagrees with onnxruntime on the input.
    progress : bool
        Progress bars over images and DMBP iterations.
    """

    model: Path | None = None
    images: list[Path] = field(default_factory=list)
    input_npy: Path | None = None
    target: str = "auto"
    box: tuple[int, int, int, int] | None = None
    methods: list[str] = field(default_factory=lambda: ["dmbp"])
    iterations: int | None = None
    device: str = "auto"
    batch_size: int = 8
    out: Path = Path("dmbp_out")
    size: tuple[int, int] | None = None
    layout: str | None = None
    scale: float | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    display: str = "clip"
    force: bool = False
    progress: bool = False


@dataclass
class ExplainReport:
    """What the job did; :meth:`to_dict` is what ``report.json`` holds."""

    data: dict[str, Any]
    path: Path

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable report."""
        return self.data

    def summary(self) -> str:
        """A few human-readable lines: per image the target and score, then the files."""
        model = self.data["model"]
        lines = [
            f"model   {model['path']}  ({model['layout']}, {model['mask_sites']} mask sites; "
            f"explains {model['explains']})",
            f"device  {self.data['device']}   methods {', '.join(self.data['methods'])}   "
            f"wall time {self.data['wall_time_s']:.1f} s",
        ]
        forced = [v for v in self.data["validation"] if not v["ok"]]
        if forced:
            lines.append(f"WARNING twin disagrees with onnxruntime ({forced[0]['first_divergence']}); forced")
        for item in self.data["images"]:
            prob = f"  p={item['probability']:.3f}" if item.get("probability") is not None else ""
            lines.append(f"image   {item['input']}: {item['target_label']}  score {item['score']:.3f}{prob}")
            for name in item["files"].values():
                lines.append(f"        -> {name}")
        lines.append(f"report  {self.path}")
        return "\n".join(lines)


def default_model() -> Path:
    """Path of the shipped demo model."""
    return Path(str(resources.files("dmbp_onnx") / "data" / "demo.onnx"))


def default_image() -> Path:
    """Path of the first shipped sample image of the demo model."""
    data = resources.files("dmbp_onnx") / "data"
    samples = json.loads((data / "samples.json").read_text())
    first = samples[0] if isinstance(samples, list) else samples["samples"][0]
    return Path(str(data / first["image"]))


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was requested but no CUDA device is available")
    return torch.device(device)


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


def parse_target(target: str, class_names: Sequence[str] | None) -> int | None:
    """``--target`` as a class (or map channel) index; ``None`` for ``auto``.

    Raises
    ------
    InputError
        A name the model does not define.
    """
    if target == "auto":
        return None
    if target.lstrip("-").isdigit():
        return int(target)
    if class_names and target in class_names:
        return list(class_names).index(target)
    known = f"; known classes: {', '.join(class_names)}" if class_names else "; the model names no classes"
    raise InputError(f"unknown target '{target}'{known}")


def request_targets(target: str, box, output: torch.Tensor, class_names) -> list:
    """One target per image: a class index, or a :class:`BoxTarget` for map outputs.

    ``auto`` is the predicted class of each image (channel 0 of a map output); ``box``
    (output-map coordinates) only applies to map outputs.
    """
    from dmbp_onnx.methods import BoxTarget

    index = parse_target(target, class_names)
    n = output.shape[0]
    if output.dim() > 2:
        return [BoxTarget(0 if index is None else index, None if box is None else tuple(box))] * n
    if box is not None:
        raise InputError(f"--box applies only to models whose output is a map; this output has shape "
                         f"{tuple(output.shape)}")
    if index is None:
        return [int(k) for k in output.argmax(dim=1).tolist()]
    return [index] * n


def explain(request: ExplainRequest) -> ExplainReport:
    """Run the explain job; returns the report (also written to ``out/report.json``).

    Raises
    ------
    DmbpOnnxError
        Bad model, bad image, bad target, ineligible model (:class:`IneligibleModelError`).
    MismatchError
        The twin disagrees with onnxruntime on the input (unless ``force``).
    """
    from dmbp_onnx.methods.target import resolve_targets
    from dmbp_onnx.twin.twin import load

    started = time.perf_counter()
    _check_request(request)
    model_path = request.model or default_model()
    twin = load(model_path)
    config, output_kind = _preprocess_config(twin, request)
    class_names = list(config.class_names) if config.class_names else None
    device = resolve_device(request.device)
    twin.to(device)
    methods = {name: _build_method(name, twin, request, device) for name in request.methods}
    items = _load_items(request, twin, config)
    stems = _unique_stems([item[0] for item in items])

    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    results, validations, timings = [], [], {name: 0.0 for name in methods}
    bar = tqdm(total=len(items), unit="image", desc="explain", disable=not request.progress)
    from dmbp_onnx.methods.base import static_batch

    for start, batch in _batches(items, static_batch(twin) or request.batch_size):
        x = torch.from_numpy(np.concatenate([item[1] for item in batch]).astype(np.float32))
        validations.append(_validate(twin, x, device, request.force))
        with torch.no_grad():
            output = _first(twin(x.to(device))).float().cpu()
        targets = request_targets(request.target, request.box, output, class_names)
        targets, selector = resolve_targets(output, targets)
        scores = (output * selector).flatten(1).sum(1)
        probs = _probabilities(output, twin, output_kind)
        attributions = {}
        for name, method in methods.items():
            tick = time.perf_counter()
            attributions[name] = method.attribute(x, target=targets)
            timings[name] += time.perf_counter() - tick
        for k, (path, array, original) in enumerate(batch):
            results.append(_write_outputs(
                out, stems[start + k], path, array, original, k, attributions, targets[k], output.shape,
                float(scores[k]), None if probs is None else probs[k], class_names, request.display,
                start + k if request.input_npy is not None else None))
            bar.update(1)
    bar.close()

    data = {
        "model": _model_info(model_path, twin),
        "preprocess": {**_jsonable(config), "output": output_kind},
        "methods": list(methods),
        "hyperparameters": {name: _method_options(m) for name, m in methods.items()},
        "iterations": {name: m.options["iterations"] for name, m in methods.items() if "iterations" in m.options},
        "display": request.display,
        "device": str(device),
        "method_wall_time_s": timings,
        "wall_time_s": time.perf_counter() - started,
        "forced": request.force,
        "validation": validations,
        "images": results,
    }
    report_path = out / "report.json"
    report_path.write_text(json.dumps(data, indent=2, default=_json_default))
    return ExplainReport(data, report_path)


def _check_request(request: ExplainRequest) -> None:
    """Argument combinations that cannot work, caught before anything is loaded."""
    if request.model is not None and request.model.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"'{request.model}' looks like an image; the first argument is the ONNX model "
                         "(run without arguments to explain the shipped demo)")
    if request.input_npy is not None and request.images:
        raise InputError("give either images or --input-npy, not both")
    if request.model is None and (request.images or request.input_npy is not None):
        raise InputError("inputs were given without a model")
    if request.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {request.batch_size}")
    if request.iterations is not None and request.iterations < 0:
        raise InputError(f"--iterations must be non-negative, got {request.iterations}")
    if not request.methods:
        raise InputError("no attribution method was chosen")


def _preprocess_config(twin, request: ExplainRequest):
    """The preprocessing configuration, and what the output holds (logits, probabilities or map)."""
    from dmbp_onnx.preprocess import PreprocessConfig

    overrides = {"layout": request.layout, "size": request.size, "scale": request.scale,
                 "mean": request.mean, "std": request.std}
    config = PreprocessConfig.from_model(twin.model, declared_input_shape=twin.inputs[0].shape, **overrides)
    return config, config.output


def _build_method(name: str, twin, request: ExplainRequest, device: torch.device):
    from dmbp_onnx.methods import METHODS

    if name not in METHODS:
        raise InputError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    kwargs: dict[str, Any] = {"device": str(device)}
    if name == "dmbp":
        kwargs["progress"] = request.progress
        if request.iterations is not None:
            kwargs["iterations"] = request.iterations
    return METHODS[name](twin, **kwargs)


def _load_items(request: ExplainRequest, twin, config) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """``(path, model input (1, ...), RGB picture in [0, 1])`` per image."""
    from dmbp_onnx.preprocess import load_image, load_npy

    if request.input_npy is not None:
        array = load_npy(request.input_npy, twin.inputs[0].shape)
        return [(request.input_npy, a[None], _display_image(a, twin.channel_axis)) for a in array]
    if not request.images and request.model is not None:
        raise InputError("no images given: pass image files or folders after the model, or --input-npy")
    items = []
    for path in collect_images(request.images or [default_image()]):
        loaded = load_image(path, config)
        items.append((path, loaded.array, loaded.original))
    return items


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


def _validate(twin, x: torch.Tensor, device: torch.device, force: bool) -> dict:
    """Twin vs onnxruntime on the actual batch; refuse on mismatch unless ``force``."""
    from dmbp_onnx.validate import validate

    report = validate(twin, inputs=[x.numpy()], device=device.type)
    if not report.ok and not force:
        raise MismatchError(
            f"the twin disagrees with onnxruntime on this input (max abs {report.max_abs:.3g}, "
            f"rtol {report.rtol}, atol {report.atol}); first diverging: {report.first_divergence}. "
            "Run `dmbp-onnx validate` for details, or --force to explain anyway."
        )
    return report.to_dict()


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _probabilities(output: torch.Tensor, twin, output_kind: str) -> torch.Tensor | None:
    """Class probabilities when the output is a (N, classes) score, else ``None``."""
    if output.dim() != 2:
        return None
    if twin.output_activation is not None:
        op, axis = twin.output_activation
        return torch.softmax(output, dim=axis) if op == "Softmax" else torch.exp(torch.log_softmax(output, dim=axis))
    if output_kind == "probabilities":
        return output
    return torch.softmax(output, dim=1)


def _target_label(target, class_names) -> tuple[str | None, str]:
    """``(class name or None, label for titles)``."""
    if isinstance(target, int):
        name = class_names[target] if class_names and target < len(class_names) else None
        return name, name or f"class {target}"
    box = "whole map" if target.box is None else "box " + ",".join(str(v) for v in target.box)
    return None, f"channel {target.channel}, {box}"


def _output_box(target, output_shape, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The explained box in image pixels ``(y0, x0, y1, x1)``, for 2-D map outputs."""
    if isinstance(target, int) or target.box is None or len(output_shape) != 4:
        return None
    axis = 3 if output_shape[3] < output_shape[1] else 1
    oh, ow = [d for a, d in enumerate(output_shape) if a not in (0, axis)]
    y0, x0, y1, x1 = target.box
    h, w = size
    return (int(y0 * h / oh), int(x0 * w / ow), int(np.ceil(y1 * h / oh)), int(np.ceil(x1 * w / ow)))


def _draw_box(image: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """A copy of ``image`` with the box outlined (at least 2 px, thicker on large images)."""
    if box is None:
        return image
    image = image.copy()
    h, w = image.shape[:2]
    y0, x0, y1, x1 = max(0, box[0]), max(0, box[1]), min(h, box[2]), min(w, box[3])
    t = max(2, max(h, w) // 120)  # survives the figures' downscaling
    for rows, cols in (((y0, y0 + t), (x0, x1)), ((y1 - t, y1), (x0, x1)),
                       ((y0, y1), (x0, x0 + t)), ((y0, y1), (x1 - t, x1))):
        image[rows[0]:rows[1], cols[0]:cols[1]] = BOX_COLOUR
    return image


def _evidence(attribution, k: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Positive and negative pixel maps of image ``k`` at ``size``, on one common scale, in [0, 1].

    The scale is the :data:`PANEL_PERCENTILE`-th percentile of the pooled values of both maps
    (their maximum when that is 0), so a few hot pixels saturate instead of washing out the rest.
    """
    from dmbp_onnx.preprocess import resize_map

    p = np.maximum(attribution.pixel_map("positive")[k], 0.0)
    q = np.maximum(-attribution.pixel_map("negative")[k], 0.0)
    pooled = np.concatenate([p.ravel(), q.ravel()])
    scale = float(np.percentile(pooled, PANEL_PERCENTILE)) or float(pooled.max()) or 1.0
    return (resize_map(np.minimum(p / scale, 1.0), size), resize_map(np.minimum(q / scale, 1.0), size))


def _write_outputs(out: Path, stem: str, path: Path, array: np.ndarray, original: np.ndarray, k: int,
                   attributions: dict, target, output_shape, score: float, probs, class_names,
                   display: str, index: int | None) -> dict[str, Any]:
    """Figures and arrays of one image for every method; its entry of the report."""
    from dmbp_onnx import viz
    from dmbp_onnx.preprocess import resize_map

    size = original.shape[:2]
    name, label = _target_label(target, class_names)
    probability = float(probs[target]) if probs is not None and isinstance(target, int) else None
    headline = f"{label}  score {score:.3g}" + ("" if probability is None else f"  p={probability:.3f}")
    picture = _draw_box(original, _output_box(target, output_shape, size))
    files: dict[str, str] = {}
    heats: dict[str, np.ndarray] = {}
    per_method: dict[str, dict[str, Any]] = {}
    for method, attribution in attributions.items():
        heat = resize_map(attribution.display(display)[k], size)
        positive, negative = _evidence(attribution, k, size)
        heats[method] = heat
        title = f"{method}: {headline}"
        files[f"{method}_overlay"] = str(viz.overlay_png(picture, heat, out / f"{stem}.{method}.overlay.png", title))
        files[f"{method}_panel"] = str(viz.panel_png(picture, positive, negative, heat,
                                                     out / f"{stem}.{method}.panel.png", title))
        arrays = {"input": array[0], "signed": attribution.signed[k].numpy(),
                  "positive": attribution.positive[k].numpy(), "negative": attribution.negative[k].numpy(),
                  "display": heat}
        history = attribution.extras.get("loss_history")
        if isinstance(history, torch.Tensor) and history.numel():
            arrays["loss_history"] = history[:, k].numpy()
            per_method[method] = {"final_loss": float(history[-1, k])}
        npz = out / f"{stem}.{method}.npz"
        np.savez_compressed(npz, **arrays)
        files[f"{method}_arrays"] = str(npz)
    if len(attributions) > 1:
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


def _model_info(path: Path, twin) -> dict[str, Any]:
    return {
        "path": str(path),
        "producer": f"{twin.model.producer_name} {twin.model.producer_version}".strip(),
        "opset": twin.clean_graph.opsets.get(""),
        "input": {"name": twin.inputs[0].name, "shape": list(twin.inputs[0].shape)},
        "layout": twin.layout,
        "mask_sites": len(twin.mask_sites),
        "passes_applied": list(twin.passes_applied),
        "explains": f"logits (terminal {twin.output_activation[0]} split off)"
        if twin.output_activation else "the model's first output",
    }


def _method_options(method: Any) -> dict[str, Any]:
    return {k: v for k, v in method.options.items() if isinstance(v, (int, float, str, bool, type(None)))}


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return np.asarray(obj).tolist()
    return str(obj)

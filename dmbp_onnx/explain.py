"""The ``explain`` job: model + images -> attribution maps, figures, arrays and a JSON report.

The CLI only parses arguments into an :class:`ExplainRequest`; everything else
happens here so the same job runs from Python.
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
from tqdm.auto import tqdm

from dmbp_onnx.errors import InputError, MismatchError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass
class ExplainRequest:
    """Everything the explain job needs; ``None`` means "use the default"."""

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
        lines = [
            f"model   {self.data['model']['path']}  ({self.data['model']['layout']}, "
            f"{self.data['model']['mask_sites']} mask sites)",
            f"device  {self.data['device']}   methods {', '.join(self.data['methods'])}   "
            f"wall time {self.data['wall_time_s']:.1f} s",
        ]
        for item in self.data["images"]:
            target = item["target_name"] or item["target"]
            prob = f"  p={item['probability']:.3f}" if item.get("probability") is not None else ""
            lines.append(f"image   {item['input']}: target {target}  score {item['score']:.3f}{prob}")
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
    """Expand folders into their image files (sorted); missing paths are an error."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                raise InputError(f"folder '{path}' contains no image files")
            found.extend(inside)
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"image '{path}' does not exist")
    return found


def _class_names(config) -> list[str] | None:
    names = getattr(config, "class_names", None)
    return list(names) if names else None


def resolve_targets(target: str, output: torch.Tensor, class_names: list[str] | None,
                    box: tuple[int, int, int, int] | None) -> list:
    """Turn ``--target`` into one target per image (predicted class when ``auto``)."""
    from dmbp_onnx.methods import BoxTarget

    n = output.shape[0]
    if output.dim() > 2:
        channel = 0 if target == "auto" else _parse_index(target, class_names)
        return [BoxTarget(channel, box) for _ in range(n)]
    if box is not None:
        raise InputError("--box applies only to models whose output is a map")
    if target == "auto":
        return [int(k) for k in output.argmax(dim=1).tolist()]
    index = _parse_index(target, class_names)
    if not 0 <= index < output.shape[1]:
        raise InputError(f"target {index} is out of range for {output.shape[1]} outputs")
    return [index] * n


def _parse_index(target: str, class_names: list[str] | None) -> int:
    if target.lstrip("-").isdigit():
        return int(target)
    if class_names and target in class_names:
        return class_names.index(target)
    known = f"; known classes: {', '.join(class_names)}" if class_names else "; the model names no classes"
    raise InputError(f"unknown target '{target}'{known}")


def _display_image(array: np.ndarray, channel_axis: int | None) -> np.ndarray:
    """An RGB picture in [0,1] of a preprocessed input (for ``--input-npy``)."""
    a = np.asarray(array, dtype=np.float32)
    if a.ndim == 3 and channel_axis is not None:
        a = np.moveaxis(a, channel_axis if channel_axis >= 0 else a.ndim + channel_axis, -1)
    elif a.ndim == 2:
        a = a[..., None]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    a = a[..., :3]
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _method_options(method: Any) -> dict[str, Any]:
    options = getattr(method, "options", None)
    if isinstance(options, dict):
        return {k: v for k, v in options.items() if isinstance(v, (int, float, str, bool, type(None)))}
    return {}


def _build_method(name: str, twin, request: ExplainRequest):
    from dmbp_onnx.methods import METHODS

    cls = METHODS[name]
    if name == "dmbp":
        kwargs: dict[str, Any] = {"device": str(resolve_device(request.device)), "progress": request.progress}
        if request.iterations is not None:
            kwargs["iterations"] = request.iterations
        return cls(twin, **kwargs)
    return cls(twin)


def explain(request: ExplainRequest) -> ExplainReport:
    """Run the explain job; returns the report (also written to ``out/report.json``).

    Raises
    ------
    DmbpOnnxError
        Bad model, bad image, bad target, ineligible model.
    MismatchError
        The twin disagrees with onnxruntime on the input (unless ``force``).
    """
    from dmbp_onnx import viz
    from dmbp_onnx.preprocess import PreprocessConfig, load_image, load_npy, resize_map
    from dmbp_onnx.twin.twin import load
    from dmbp_onnx.validate import validate

    started = time.perf_counter()
    model_path = request.model or default_model()
    if request.model is None and request.images:
        raise InputError("images were given without a model")
    twin = load(model_path)
    overrides = {k: v for k, v in {
        "layout": request.layout, "size": request.size, "scale": request.scale,
        "mean": request.mean, "std": request.std}.items() if v is not None}
    config = PreprocessConfig.from_model(twin.model, declared_input_shape=twin.inputs[0].shape, **overrides)
    class_names = _class_names(config)
    device = resolve_device(request.device)
    twin.to(device)
    methods = [_build_method(name, twin, request) for name in request.methods]

    if request.input_npy is not None:
        array = load_npy(request.input_npy, twin.inputs[0].shape)
        items = [(request.input_npy, a[None], _display_image(a, twin.channel_axis)) for a in array]
    else:
        paths = collect_images(request.images or [default_image()])
        items = []
        for path in paths:
            loaded = load_image(path, config)
            items.append((path, loaded.array, loaded.original))

    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    results, validations = [], []
    batches = [items[i:i + max(1, request.batch_size)] for i in range(0, len(items), max(1, request.batch_size))]
    bar = tqdm(total=len(items), unit="image", disable=not request.progress, desc="explain")
    for batch in batches:
        x = torch.from_numpy(np.concatenate([item[1] for item in batch]).astype(np.float32))
        report = validate(twin, inputs=[x.numpy()], device=request.device)
        validations.append(report.to_dict())
        if not report.ok and not request.force:
            raise MismatchError(
                f"the twin disagrees with onnxruntime on this input (max abs {report.max_abs:.3g}, "
                f"rtol {report.rtol}, atol {report.atol}); first diverging: {report.first_divergence}. "
                "Use --force to explain anyway."
            )
        with torch.no_grad():
            output = twin(x.to(device)).float().cpu()
        targets = resolve_targets(request.target, output, class_names, request.box)
        attributions = {name: m.attribute(x, target=targets) for name, m in zip(request.methods, methods)}
        probs = _probabilities(output, twin, config)
        for k, (path, _, original) in enumerate(batch):
            results.append(_write_image_outputs(
                out, Path(path), k, original, attributions, targets[k], class_names, output[k],
                probs[k] if probs is not None else None, request, viz, resize_map, len(items) > 1))
            bar.update(1)
    bar.close()

    data = {
        "model": {
            "path": str(model_path),
            "producer": f"{twin.model.producer_name} {twin.model.producer_version}".strip(),
            "opset": twin.clean_graph.opsets.get(""),
            "layout": twin.layout,
            "mask_sites": len(twin.mask_sites),
            "passes_applied": twin.passes_applied,
            "explains": "logits (terminal %s split off)" % twin.output_activation[0]
            if twin.output_activation else "the model's first output",
        },
        "preprocess": _jsonable(config),
        "methods": list(request.methods),
        "hyperparameters": {name: _method_options(m) for name, m in zip(request.methods, methods)},
        "display": request.display,
        "device": str(device),
        "wall_time_s": time.perf_counter() - started,
        "validation": validations,
        "images": results,
    }
    report_path = out / "report.json"
    report_path.write_text(json.dumps(data, indent=2, default=_json_default))
    return ExplainReport(data, report_path)


def _probabilities(output: torch.Tensor, twin, config) -> torch.Tensor | None:
    if output.dim() != 2:
        return None
    if twin.output_activation is not None:
        op, axis = twin.output_activation
        return torch.softmax(output, dim=axis) if op == "Softmax" else torch.exp(torch.log_softmax(output, dim=axis))
    if getattr(config, "output", None) == "logits":
        return torch.softmax(output, dim=1)
    return None


def _write_image_outputs(out, path, k, original, attributions, target, class_names, output, probs,
                         request, viz, resize_map, many) -> dict[str, Any]:
    stem = path.stem if not many or request.input_npy is None else f"{path.stem}_{k}"
    h, w = original.shape[:2]
    target_name = class_names[target] if isinstance(target, int) and class_names and target < len(class_names) else None
    if isinstance(target, int):
        score = float(output[target])
    else:
        score = float(next(iter(attributions.values())).score[k])
    title_target = target_name or str(target)
    files: dict[str, str] = {}
    heats: dict[str, np.ndarray] = {}
    for name, attribution in attributions.items():
        display = resize_map(attribution.display(request.display)[k], (h, w))
        positive = resize_map(attribution.pixel_map("positive")[k], (h, w))
        negative = resize_map(attribution.pixel_map("negative")[k], (h, w))
        signed = resize_map(attribution.pixel_map("signed")[k], (h, w))
        heats[name] = display
        title = f"{name}: {title_target} (score {score:.2f})"
        files[f"{name}_overlay"] = str(viz.overlay_png(original, display, out / f"{stem}.{name}.overlay.png", title))
        files[f"{name}_panel"] = str(viz.panel_png(original, positive, negative, display,
                                                   out / f"{stem}.{name}.panel.png", title))
        arrays = {"signed": attribution.signed[k].numpy(), "positive": attribution.positive[k].numpy(),
                  "negative": attribution.negative[k].numpy(), "display": display}
        npz = out / f"{stem}.{name}.npz"
        np.savez_compressed(npz, **arrays)
        files[f"{name}_arrays"] = str(npz)
    if len(attributions) > 1:
        files["comparison"] = str(viz.comparison_png(original, heats, out / f"{stem}.comparison.png",
                                                     f"{title_target} (score {score:.2f})"))
    return {
        "input": str(path),
        "target": target if isinstance(target, int) else _jsonable(target),
        "target_name": target_name,
        "score": score,
        "probability": float(probs[target]) if probs is not None and isinstance(target, int) else None,
        "probabilities": probs.tolist() if probs is not None else None,
        "files": files,
    }


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, (np.ndarray, torch.Tensor)):
        return np.asarray(obj).tolist()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)

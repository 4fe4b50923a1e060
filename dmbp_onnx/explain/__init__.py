"""The ``explain`` job: model + images -> attribution maps, figures, arrays and a JSON report.

The CLI only parses arguments into an :class:`ExplainRequest`; everything else
happens here so the same job runs from Python::

    from dmbp_onnx.explain import ExplainRequest, explain
    report = explain(ExplainRequest(model=Path("net.onnx"), images=[Path("cat.png")]))

Per image and method it writes ``STEM.METHOD.overlay.png`` (signed map over the image,
diverging colormap centred at 0, colour bar), ``STEM.METHOD.panel.png`` (image, positive,
negative, signed), ``STEM.METHOD.npz`` (raw arrays) and, with several methods,
``STEM.comparison.png``; then ``report.json`` for the whole run and ``report.html``, the same as
one self-contained page (:mod:`dmbp_onnx.html`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dmbp_onnx.explain.boxes import BOX_COLOUR, _draw_box, _output_box
from dmbp_onnx.explain.defaults import default_image, default_model
from dmbp_onnx import jsonio
from dmbp_onnx.device import resolve_device
from dmbp_onnx.explain.inputs import (
    IMAGE_SUFFIXES,
    _batches,
    _load_items,
    _preprocess_config,
    _unique_stems,
    collect_images,
)
from dmbp_onnx.explain.methods import _build_method
from dmbp_onnx.explain.model import load_twin, require_layout
from dmbp_onnx.explain.outputs import PANEL_PERCENTILE, _write_outputs
from dmbp_onnx.explain.report import ExplainReport, _jsonable, _method_options, _model_info
from dmbp_onnx.explain.request import ExplainRequest, _check_request
from dmbp_onnx.explain.targets import _probabilities, parse_target, request_targets
from dmbp_onnx.explain.validation import _validate
from dmbp_onnx.html import write_explain_html

__all__ = [
    "BOX_COLOUR",
    "IMAGE_SUFFIXES",
    "PANEL_PERCENTILE",
    "ExplainReport",
    "ExplainRequest",
    "collect_images",
    "default_image",
    "default_model",
    "explain",
    "parse_target",
    "request_targets",
    "resolve_device",
    # building blocks the tests import from here
    "_batches",
    "_draw_box",
    "_output_box",
    "_unique_stems",
]


def explain(request: ExplainRequest) -> ExplainReport:
    """Run the explain job; returns the report (also written to ``out/report.json``).

    Raises
    ------
    DmbpOnnxError
        Bad model, bad image, bad target, ineligible model (:class:`IneligibleModelError`).
    MismatchError
        The twin disagrees with onnxruntime on the input (unless ``force``).
    """
    from dmbp_onnx.methods.base import pad_batch, static_batch
    from dmbp_onnx.methods.target import resolve_targets, target_rule

    started = time.perf_counter()
    _check_request(request)
    model_path = request.model or default_model()
    twin, choice = load_twin(model_path, request.output, request.layout)
    require_layout(twin)
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
    rule = "given: --target " + request.target + ("" if request.box is None else " --box")
    bar = tqdm(total=len(items), unit="image", desc="explain", disable=not request.progress)
    fixed = static_batch(twin)
    for start, batch in _batches(items, fixed or request.batch_size):
        x = torch.from_numpy(np.concatenate([item[1] for item in batch]).astype(np.float32))
        runnable = pad_batch(x, fixed) if fixed else x  # a fixed-batch model runs exactly its batch
        validations.append(_validate(twin, runnable, device, request.force))
        with torch.no_grad():
            output = twin(runnable.to(device)).float().cpu()[: x.shape[0]]
        targets = request_targets(request.target, request.box, output, class_names)
        targets, selector = resolve_targets(output, targets)
        if request.target == "auto" and request.box is None:
            rule = target_rule(output)
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
        "model": _model_info(model_path, twin, choice),
        "target_rule": rule,
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
    jsonio.write(data, report_path)
    write_explain_html(data, out / "report.html")
    return ExplainReport(data, report_path)

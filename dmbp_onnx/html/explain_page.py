"""The explain run as one HTML page: per image the input, every method's map, target and score.

The page is rebuilt from ``report.json``'s content and the ``STEM.METHOD.npz`` arrays the run
wrote next to it (``image``: the picture, ``display``: the signed map in [-1, 1]). Every method's
map is drawn on the same signed colour scale as :mod:`dmbp_onnx.viz` (one colour bar per image).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from dmbp_onnx.html.images import colorbar_uri, png_uri
from dmbp_onnx.html.page import key_values, page, table, text, write

_SETTINGS = ("methods", "display", "device", "forced", "iterations", "wall_time_s")


def write_explain_html(data: dict[str, Any], path: str | Path) -> Path:
    """Write the page of an explain run.

    Parameters
    ----------
    data : dict
        The content of ``report.json``.
    path : str or pathlib.Path
        The HTML file; the run's ``.npz`` files are read from its folder.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    return write(explain_html(data, path.parent), path)


def explain_html(data: dict[str, Any], folder: Path) -> str:
    """The page of an explain run whose arrays are in ``folder`` (see :func:`write_explain_html`)."""
    model = data["model"]
    bar = colorbar_uri()
    images = "".join(_image_section(item, data["methods"], folder, bar) for item in data["images"])
    body = (
        f"<h1>dmbp-onnx explain</h1><p class=muted>model <code>{escape(model['path'])}</code> · "
        f"explains {escape(model['explains'])} · {len(data['images'])} image(s)</p>"
        f"{images}<h2>Twin validation</h2>{_validation(data['validation'], data['forced'])}"
        f"<h2>Settings</h2>{_settings(data)}"
    )
    return page(f"dmbp-onnx explain: {Path(model['path']).name}", body)


def _image_section(item: dict[str, Any], methods: list[str], folder: Path, bar: str) -> str:
    """One image: headline, the input and every method's map, the legend and DMBP's numbers."""
    arrays = {m: _arrays(folder, item["files"][f"{m}_arrays"]) for m in methods}
    picture = next(iter(arrays.values()))["image"]
    figures = [_figure(png_uri(picture), "input")]
    for method, a in arrays.items():
        figures.append(_figure(png_uri(_overlay(picture, a["display"])), method))
    prob = "" if item.get("probability") is None else f" · p = {item['probability']:.3f}"
    legend = (f'<div class=legend><span>−1 against</span><img src="{bar}" alt="colour scale">'
              "<span>+1 for</span><span class=muted>(each map scaled to its own range, "
              "shared colour scale)</span></div>")
    return (
        f"<h2>{escape(Path(item['input']).name)}</h2>"
        f"<p>target <b>{escape(item['target_label'])}</b> · score {text(item['score'])}{prob}</p>"
        f"<div class=maps>{''.join(figures)}</div>{legend}{_method_numbers(item['methods'])}"
    )


def _arrays(folder: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(folder / Path(name).name) as archive:
        return {"image": archive["image"], "display": archive["display"]}


def _overlay(picture: np.ndarray, heat: np.ndarray) -> np.ndarray:
    from dmbp_onnx.viz import blend

    return blend(picture.astype(np.float32) / 255.0, np.nan_to_num(heat))


def _figure(uri: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'


def _method_numbers(per_method: dict[str, dict[str, Any]]) -> str:
    """Final losses and DMBP's magnitudes (``Attribution.extras["magnitudes"]``), when reported."""
    html = ""
    for method, numbers in per_method.items():
        magnitudes = numbers.get("magnitudes")
        if magnitudes:
            rows = ([escape(k), f"<span class=mono>{text(v)}</span>"] for k, v in magnitudes.items())
            html += f"<h3>{escape(method)} magnitudes</h3>" + table(("magnitude", "value"), rows)
        if numbers.get("final_loss") is not None:
            html += f"<p>{escape(method)} final loss <span class=mono>{text(numbers['final_loss'])}</span></p>"
    return html


def _validation(runs: list[dict[str, Any]], forced: bool) -> str:
    rows = ([f'<span class={"pass" if r["ok"] else "fail"}>{"match" if r["ok"] else "MISMATCH"}</span>',
             text(r.get("max_abs")), text(r.get("max_rel")), text(r.get("first_divergence")),
             text(r.get("input_shapes"))] for r in runs)
    note = "<p class=fail>forced: explained despite a mismatch</p>" if forced and not all(r["ok"] for r in runs) else ""
    return note + table(("twin vs onnxruntime", "max abs", "max rel", "first divergence", "input"), rows)


def _settings(data: dict[str, Any]) -> str:
    flat = {key: data[key] for key in _SETTINGS if key in data}
    flat.update({f"model.{k}": v for k, v in data["model"].items()})
    flat.update({f"preprocess.{k}": v for k, v in data["preprocess"].items()})
    flat.update({f"{m}.{k}": v for m, options in data["hyperparameters"].items() for k, v in options.items()})
    return key_values(flat)

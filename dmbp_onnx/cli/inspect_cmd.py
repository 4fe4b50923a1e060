"""``dmbp-onnx inspect MODEL``: what the model is, what the twin makes of it, whether DMBP applies."""

from __future__ import annotations

import argparse

from dmbp_onnx.jsonio import dumps


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``inspect`` subcommand."""
    parser = subparsers.add_parser(
        "inspect",
        help="describe a model: opsets, inputs/layout, ops, passes, mask sites, DMBP eligibility",
        description=(
            "Describe an ONNX model: IR and opset versions, producer, inputs and outputs with "
            "layout, op histogram, rewrite passes applied, mask sites of the twin, and whether "
            "DMBP applies (the model is piecewise linear) with the offending nodes."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="path of the .onnx file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    parser.set_defaults(run=run)
    return parser


def describe(path: str) -> dict:
    """Everything ``inspect`` reports about the model at ``path``, as a JSON-ready dict.

    The keys of :func:`dmbp_onnx.graph.inspect.inspect_model` plus ``model`` (the path),
    ``twin`` (``ok`` and ``error``: whether the twin can be built; ``ok`` is None when torch
    is not installed, the only part of ``inspect`` that needs it), ``mask_sites`` and
    ``mask_filters`` (number of sites and of gated filters/units; None when the twin
    cannot be built).

    Raises
    ------
    ModelLoadError
        When the file is not a usable ONNX model.
    """
    from dmbp_onnx.errors import UnsupportedModelError
    from dmbp_onnx.graph.inspect import inspect_model
    from dmbp_onnx.graph.load import load_model
    from dmbp_onnx.graph.passes import clean

    model = load_model(path)
    cleaned = clean(model)
    sites = None
    try:
        from dmbp_onnx.twin.twin import Twin  # the torch side: optional for inspect
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "torch":
            raise
        twin = {"ok": None, "error": "not built: torch is not installed"}
    else:
        try:
            sites = Twin(model, cleaned).mask_sites
            twin = {"ok": True, "error": None}
        except UnsupportedModelError as exc:
            twin = {"ok": False, "error": str(exc)}
    info = inspect_model(model, cleaned)
    return {
        "model": str(path),
        **info,
        "twin": twin,
        "mask_sites": None if sites is None else len(sites),
        "mask_filters": None if sites is None else sum(s.channels for s in sites),
    }


def _histogram(ops: dict) -> str:
    ranked = sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{op} {count}" for op, count in ranked) or "(none)"


def _shape(shape) -> str:
    if shape is None:
        return "(no shape)"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _tensor_line(tensor: dict) -> str:
    line = f"{tensor['name']} {tensor['dtype']} {_shape(tensor['shape'])}"
    if "layout" in tensor:
        line += f", layout {tensor['layout']}"
        if tensor.get("channel_axis") is not None:
            line += f" (channel axis {tensor['channel_axis']})"
    return line


def text(info: dict) -> str:
    """The human-readable report of :func:`describe`'s dict."""
    producer = " ".join(p for p in (info["producer"]["name"], info["producer"]["version"]) if p)
    opsets = ", ".join(f"{domain or 'ai.onnx'} {version}" for domain, version in info["opsets"].items())
    lines = [
        f"model:      {info['model']}",
        f"IR version: {info['ir_version']}; opsets: {opsets}; producer: {producer or '(unknown)'}",
        "inputs:",
        *(f"  {_tensor_line(t)}" for t in info["inputs"]),
        "outputs:",
        *(f"  {_tensor_line(t)}" for t in info["outputs"]),
        f"ops:        {_histogram(info['ops'])}",
    ]
    if info["ops_clean"] != info["ops"]:
        lines.append(f"cleaned:    {_histogram(info['ops_clean'])}")
    lines.append(f"passes:     {', '.join(info['passes_applied']) or 'none'}")
    if info["output_activation"]:
        op, axis = info["output_activation"]
        lines.append(f"output:     terminal {op} (axis {axis}) split off; the twin returns logits")
    if info["twin"]["ok"]:
        lines.append(f"mask sites: {info['mask_sites']} ({info['mask_filters']} filters/units)")
    elif info["twin"]["ok"] is None:
        lines.append(f"twin:       {info['twin']['error']}")
    else:
        lines.append(f"twin:       cannot be built: {info['twin']['error']}")
    eligibility = info["eligibility"]
    if eligibility["eligible"]:
        lines.append("DMBP:       eligible (piecewise linear between inputs and outputs)")
    else:
        offending = ", ".join(f"{n['node']} ({n['op']})" for n in eligibility["offending"])
        lines.append(f"DMBP:       NOT eligible; offending nodes: {offending}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the description of ``args.model``; always 0 once the model loads."""
    info = describe(args.model)
    print(dumps(info) if args.json else text(info))
    return 0

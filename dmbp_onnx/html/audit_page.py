"""The audit report as one HTML page: a table of models, each row expandable to its checks
(failed models start expanded)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from dmbp_onnx.html.page import key_values, page, table, text, write


def write_audit_html(report: dict[str, Any], path: str | Path) -> Path:
    """Write the page of an audit report.

    Parameters
    ----------
    report : dict
        :func:`~dmbp_onnx.audit.report.build_report`'s result.
    path : str or pathlib.Path
        The HTML file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return write(audit_html(report), path)


def audit_html(report: dict[str, Any]) -> str:
    """The page of an audit report (see :func:`write_audit_html`)."""
    summary = report["summary"]
    verdict = "pass" if report["ok"] else "fail"
    counts = ", ".join(f"{n} {s}" for s, n in summary["checks"].items())
    rows = [_model_row(m) for m in report["models"]]
    body = (
        f"<h1>dmbp-onnx audit: <span class={verdict}>{verdict.upper()}</span></h1>"
        f"<p>{summary['passed']} of {summary['models']} model(s) passed ({summary['failed']} failed); "
        f"checks: {escape(counts)}; {report['duration_s']:.1f} s; started {escape(report['started'])}; "
        f"{escape(report['tool']['name'])} {escape(report['tool']['version'])}</p>"
        + table(("model (click for checks)", "status", "failing checks", "first diverging node", "time (s)"),
                rows, cls="models")
        + f"<h2>Settings</h2>{key_values(report['config'])}"
    )
    return page(f"dmbp-onnx audit: {summary['passed']}/{summary['models']} passed", body)


def _model_row(model: dict[str, Any]) -> list[str]:
    status = "pass" if model["ok"] else "fail"
    failing = [c["name"] for c in model["checks"] if c["status"] in ("fail", "error")]
    checks = table(("check", "status", "message", "time (s)"), (
        [escape(c["name"]), f'<span class={c["status"]}>{c["status"]}</span>',
         f"<span class=mono>{escape(c['message'])}</span>", f"{c['duration_s']:.2f}"]
        for c in model["checks"]
    ))
    digest = f"<p class=muted>sha256 {text(model['sha256'])} · {text(model['size'])} bytes</p>"
    return [
        f"<details{'' if model['ok'] else ' open'}><summary><code>{escape(model['path'])}</code></summary>"
        f"{digest}{checks}</details>",
        f"<span class={status}>{status.upper()}</span>",
        escape(", ".join(failing)) or "—",
        text(first_divergence(model)),
        f"{model['duration_s']:.1f}",
    ]


def first_divergence(model: dict[str, Any]) -> str | None:
    """The first diverging node a validation check of ``model`` named, if any."""
    for check in model["checks"]:
        found = _find_divergence(check["details"])
        if found:
            return found
    return None


def _find_divergence(value: Any) -> str | None:
    """The first non-empty ``first_divergence`` anywhere in nested details (runs are lists)."""
    if isinstance(value, dict):
        if value.get("first_divergence"):
            return str(value["first_divergence"])
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            found = _find_divergence(item)
            if found:
                return found
    return None

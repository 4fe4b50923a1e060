"""The audit report: one JSON document, the same as JUnit XML, and a human summary.

The JSON schema (``version`` 2) is documented in ``docs/audit.md``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from dmbp_onnx.audit.checks import STATUSES
from dmbp_onnx.audit.config import AuditConfig
from dmbp_onnx.audit.runner import ModelResult
from dmbp_onnx.jsonio import dumps, write

SCHEMA_VERSION = 2
"""Version of the JSON report layout; bumped on any incompatible change."""

# Characters XML 1.0 cannot carry at all (error messages may quote bytes of a hostile file).
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def build_report(results: Sequence[ModelResult], config: AuditConfig, started: datetime, duration_s: float) -> dict:
    """The JSON-ready report of an audit.

    Parameters
    ----------
    results : sequence of ModelResult
        One per model, in audit order.
    config : AuditConfig
        The settings used.
    started : datetime
        When the audit began (UTC).
    duration_s : float
        Wall-clock time of the whole audit.
    """
    from dmbp_onnx import __version__

    counts = Counter(c.status for r in results for c in r.checks)
    passed = sum(r.ok for r in results)
    return {
        "version": SCHEMA_VERSION,
        "tool": {"name": "dmbp-onnx", "version": __version__},
        "started": started.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": duration_s,
        "config": config.to_dict(),
        "ok": passed == len(results),
        "summary": {
            "models": len(results),
            "passed": passed,
            "failed": len(results) - passed,
            "checks": {status: counts.get(status, 0) for status in STATUSES},
        },
        "models": [r.to_dict() for r in results],
    }


def write_json(report: dict, path: str | Path) -> None:
    """Write the report as indented strict JSON (see :mod:`dmbp_onnx.jsonio` for NaN and infinity)."""
    write(report, path)


def _xml_text(text: str) -> str:
    return _XML_INVALID.sub("\ufffd", text)


def _counts(checks: list[dict]) -> dict[str, str]:
    statuses = Counter(c["status"] for c in checks)
    return {
        "tests": str(len(checks)),
        "failures": str(statuses["fail"]),
        "errors": str(statuses["error"]),
        "skipped": str(statuses["skip"]),
    }


def junit_tree(report: dict) -> ET.ElementTree:
    """The report as JUnit XML: one ``<testsuite>`` per model, one ``<testcase>`` per check."""
    every = [c for m in report["models"] for c in m["checks"]]
    root = ET.Element("testsuites", name="dmbp-onnx audit", time=f"{report['duration_s']:.3f}", **_counts(every))
    for model in report["models"]:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_xml_text(model["path"]),
            time=f"{model['duration_s']:.3f}",
            timestamp=report["started"],
            **_counts(model["checks"]),
        )
        properties = ET.SubElement(suite, "properties")
        for key in ("sha256", "size"):
            ET.SubElement(properties, "property", name=key, value=str(model[key]))
        for check in model["checks"]:
            case = ET.SubElement(
                suite, "testcase", name=check["name"], classname=_xml_text(model["path"]),
                time=f"{check['duration_s']:.3f}",
            )  # fmt: skip
            message = _xml_text(check["message"])
            tag = {"fail": "failure", "error": "error", "skip": "skipped"}.get(check["status"])
            if tag is not None:
                element = ET.SubElement(case, tag, message=message, type=check["status"])
                element.text = _xml_text(dumps(check["details"], indent=2)) if check["details"] else message
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(report: dict, path: str | Path) -> None:
    """Write the report as JUnit XML (UTF-8, with an XML declaration)."""
    junit_tree(report).write(path, encoding="utf-8", xml_declaration=True)


_MARKS = {"pass": "✓", "fail": "✗", "error": "!", "skip": "-"}
_ASCII_MARKS = {"pass": "+", "fail": "x", "error": "!", "skip": "-"}


def marks_for(encoding: str | None) -> dict[str, str]:
    """The status marks a stream with ``encoding`` can print (✓/✗, else ASCII)."""
    try:
        "".join(_MARKS.values()).encode(encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return _ASCII_MARKS
    return _MARKS


def model_lines(model: dict, marks: dict[str, str]) -> list[str]:
    """One line for the model with a mark per check, then one indented line per failed check."""
    verdict = "PASS" if model["ok"] else "FAIL"
    checks = "  ".join(f"{marks[c['status']]} {c['name']}" for c in model["checks"])
    lines = [f"{verdict} {model['path']}  {checks}  ({model['duration_s']:.1f} s)"]
    for check in model["checks"]:
        if check["status"] in ("fail", "error"):
            first = (check["message"].strip().splitlines() or [""])[0]
            lines.append(f"    {check['name']}: {first}")
    return lines


def summary_line(report: dict) -> str:
    """The closing line: models passed and check counts."""
    summary = report["summary"]
    counts = ", ".join(f"{summary['checks'][s]} {s}" for s in STATUSES)
    return (
        f"audit: {summary['passed']} of {summary['models']} model(s) passed "
        f"({summary['failed']} failed); checks: {counts}; {report['duration_s']:.1f} s"
    )

"""JSON and JUnit reports agree with each other and stay valid whatever the messages hold."""

import json
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from dmbp_onnx.audit.checks import CheckResult
from dmbp_onnx.audit.config import AuditConfig
from dmbp_onnx.audit.report import build_report, marks_for, model_lines, summary_line, write_json, write_junit
from dmbp_onnx.audit.runner import ModelResult


def _no_constant(name):
    raise AssertionError(f"{name} is not strict JSON")


def _results():
    good = ModelResult("a/good.onnx", "ab" * 32, 1234, [
        CheckResult("load", "pass", "IR 8", 0.01, {"opsets": {"ai.onnx": 17}}),
        CheckResult("validate-seeded-1", "pass", "ok", 0.2, {"max_abs": float("inf"), "max_rel": float("nan")}),
        CheckResult("dmbp-smoke", "skip", "explain is off"),
    ], 0.3)  # fmt: skip
    bad = ModelResult("b/bad <&\x00\x1b>.onnx", None, 10, [
        CheckResult("load", "fail", "not a valid ONNX protobuf: byte \x00\x07 <tag> & \"quote\"", 0.0),
        CheckResult("worker", "error", "the worker process ended with exit code -9", 0.0, {"check": "load"}),
    ], 0.1)  # fmt: skip
    return [good, bad]


def _report():
    return build_report(_results(), AuditConfig(), datetime(2026, 1, 2, tzinfo=timezone.utc), 0.5)


def test_json_report_layout_and_counts(tmp_path):
    path = tmp_path / "r.json"
    write_json(_report(), path)
    report = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)  # strict JSON
    assert report["version"] == 2 and report["tool"]["name"] == "dmbp-onnx"
    assert report["ok"] is False and report["started"] == "2026-01-02T00:00:00+00:00"
    assert report["summary"] == {
        "models": 2, "passed": 1, "failed": 1, "checks": {"pass": 2, "fail": 1, "skip": 1, "error": 1},
    }  # fmt: skip
    assert report["config"]["max_model_mb"] == 512.0
    good, bad = report["models"]
    assert (good["ok"], good["sha256"], good["size"]) == (True, "ab" * 32, 1234)
    assert good["checks"][1]["details"] == {"max_abs": None, "max_rel": None}
    assert report["non_finite"] == {"/models/0/checks/1/details/max_abs": "inf",
                                    "/models/0/checks/1/details/max_rel": "nan"}
    assert set(good["checks"][0]) == {"name", "status", "message", "duration_s", "details"}
    assert (bad["ok"], bad["sha256"]) == (False, None)


def test_junit_is_valid_xml_and_matches_the_json(tmp_path):
    report = _report()
    path = tmp_path / "r.xml"
    write_junit(report, path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["a/good.onnx", "b/bad <&\ufffd\ufffd>.onnx"]
    for suite, model in zip(suites, report["models"]):
        cases = suite.findall("testcase")
        assert [c.get("name") for c in cases] == [c["name"] for c in model["checks"]]
        assert suite.get("tests") == str(len(cases))
        for case, check in zip(cases, model["checks"]):
            tag = {"pass": None, "fail": "failure", "error": "error", "skip": "skipped"}[check["status"]]
            children = [child.tag for child in case]
            assert children == ([] if tag is None else [tag])
    properties = {p.get("name"): p.get("value") for p in suites[0].find("properties")}
    assert properties == {"sha256": "ab" * 32, "size": "1234"}
    failure = suites[1].find("testcase/failure")
    assert failure.get("message") == 'not a valid ONNX protobuf: byte \ufffd\ufffd <tag> & "quote"'


def test_human_lines_and_ascii_fallback():
    report = _report()
    lines = model_lines(report["models"][1], marks_for("utf-8"))
    assert lines[0].startswith("FAIL b/bad") and "✗ load" in lines[0] and "! worker" in lines[0]
    assert lines[1] == "    load: not a valid ONNX protobuf: byte \x00\x07 <tag> & \"quote\""
    assert model_lines(report["models"][0], marks_for("utf-8"))[0].startswith("PASS a/good.onnx  ✓ load")
    ascii_line = model_lines(report["models"][1], marks_for("ascii"))[0]
    assert "x load" in ascii_line and "✗" not in ascii_line
    assert summary_line(report).startswith("audit: 1 of 2 model(s) passed (1 failed); checks: 2 pass, 1 fail")

"""Both pages in a real browser (headless Chromium, driven by Playwright and by its own command
line): every image loads, nothing else is fetched, no console error; the screenshots land in the
artifact folder (:data:`browser.ARTIFACTS`)."""

import pytest

from browser import ARTIFACTS, chromium_or_skip, open_page
from dmbp_onnx.html import write_audit_html


@pytest.fixture(scope="module")
def chromium():
    return chromium_or_skip()


@pytest.fixture(params=["playwright", "cli"])
def driver(request):
    return request.param


def test_explain_page_in_chromium(chromium, driver, explain_run):
    out, report = explain_run
    seen = open_page(chromium, out / "report.html", f"explain-report.{driver}.png", driver)
    assert seen["errors"] == [] and seen["requests"] == []
    methods = len(report["methods"])
    assert len(seen["images"]) == len(report["images"]) * (1 + methods + 1)  # input, maps, colour bar
    assert all(width > 0 for width in seen["images"])
    for item in report["images"]:
        assert item["target_label"] in seen["text"]
    assert "positive_evidence" in seen["text"] and "match" in seen["text"]
    assert (ARTIFACTS / f"explain-report.{driver}.png").stat().st_size > 0


def test_audit_page_in_chromium(chromium, driver, tmp_path, audit_report):
    seen = open_page(chromium, write_audit_html(audit_report, tmp_path / "audit.html"), f"audit-report.{driver}.png",
                     driver)
    assert seen["errors"] == [] and seen["requests"] == []
    assert seen["rows"] == len(audit_report["models"]) == 3
    assert all(width > 0 for width in seen["images"])
    assert "conv2 (Conv)" in seen["text"] and "<script>alert(1)</script>" in seen["text"]
    assert "the worker process ended with exit code -9" in seen["text"]  # the rows are expanded
    assert (ARTIFACTS / f"audit-report.{driver}.png").stat().st_size > 0

"""The HTML pages without a browser: self-contained, escaped, with every part the brief lists."""

import re
from pathlib import Path

from dmbp_onnx.html import audit_html, write_audit_html
from dmbp_onnx.html.audit_page import first_divergence

from html_checks import assert_self_contained


def test_explain_writes_a_self_contained_page_next_to_the_json(explain_run):
    out, report = explain_run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert_self_contained(html)
    # per image: the input and one map per method, plus one colour bar each
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == len(report["images"]) * (1 + 2 + 1)
    for item in report["images"]:
        assert Path(item["input"]).name in html and item["target_label"] in html
        magnitudes = item["methods"]["dmbp"]["magnitudes"]
        assert set(magnitudes) >= {"positive_evidence", "negative_share", "collapsed"}
    assert "dmbp magnitudes" in html and "Twin validation" in html and "Settings" in html


def test_audit_page_rows_details_and_escaping(tmp_path, audit_report):
    path = write_audit_html(audit_report, tmp_path / "audit.html")
    html = path.read_text(encoding="utf-8")
    assert html == audit_html(audit_report)
    assert_self_contained(html)
    assert html.count("<details>") == 1 and html.count("<details open>") == 2  # failed models expanded
    assert "conv2 (Conv)" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in html


def test_first_divergence_is_found_in_nested_details(audit_report):
    assert [first_divergence(m) for m in audit_report["models"]] == [None, "conv2 (Conv)", None]


def test_audit_cli_writes_the_page(tmp_path):
    import onnx

    from dmbp_onnx.cli import main
    from small_models import conv_net

    onnx.save(conv_net(), str(tmp_path / "net.onnx"))
    page = tmp_path / "audit.html"
    assert main(["audit", str(tmp_path / "net.onnx"), "--samples", "1", "--no-explain", "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert_self_contained(html)
    assert "net.onnx" in html and html.count("<details>") == 1


def test_inlined_images_are_scaled_for_the_page():
    import base64
    import io

    import numpy as np
    from PIL import Image

    from dmbp_onnx.html.images import MAX_SIDE, MIN_SIDE, colorbar_uri, png_uri

    def size(uri):
        return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).size

    assert size(png_uri(np.zeros((8, 6, 3)))) == (6 * 22, 8 * 22)  # tiny inputs: whole-factor nearest upscale
    assert min(size(png_uri(np.zeros((8, 6, 3))))) >= MIN_SIDE
    assert size(png_uri(np.zeros((1000, 2000, 3), np.uint8))) == (MAX_SIDE, MAX_SIDE // 2)
    assert size(png_uri(np.zeros((300, 200, 3)))) == (200, 300) and size(colorbar_uri()) == (256, 14)

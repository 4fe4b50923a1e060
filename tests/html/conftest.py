"""Fixtures of the HTML report tests: a finished explain run and a synthetic audit report."""

from datetime import datetime, timezone

import numpy as np
import onnx
import pytest
from PIL import Image

from dmbp_onnx.audit.checks import CheckResult
from dmbp_onnx.audit.config import AuditConfig
from dmbp_onnx.audit.report import build_report
from dmbp_onnx.audit.runner import ModelResult
from dmbp_onnx.explain import ExplainRequest, explain
from small_models import conv_net

EXPLAIN_METHODS = ["dmbp", "gradient"]


@pytest.fixture(scope="module")
def explain_run(tmp_path_factory):
    """``(folder, report)`` of a two-image, two-method explain run of a small CNN."""
    root = tmp_path_factory.mktemp("explain")
    onnx.save(conv_net(), str(root / "net.onnx"))
    images = []
    for k, shape in enumerate([(24, 32, 3), (8, 8, 3)]):
        images.append(root / f"img{k}.png")
        Image.fromarray(np.random.default_rng(k).integers(0, 256, shape, dtype=np.uint8)).save(images[-1])
    request = ExplainRequest(model=root / "net.onnx", images=images, methods=EXPLAIN_METHODS, iterations=2,
                             device="cpu", out=root / "out", progress=False)
    return root / "out", explain(request).to_dict()


def _check(name, status, message, details=None):
    return CheckResult(name, status, message, 0.01, details or {})


@pytest.fixture
def audit_report():
    """A report of three models: one passes, one diverges at a node, one is hostile."""
    good = ModelResult("models/good.onnx", "ab" * 32, 1234, [
        _check("load", "pass", "IR 8"), _check("validate-seeded-1", "pass", "ok", {"runs": []}),
    ], 0.3)  # fmt: skip
    diverging = ModelResult("models/diverging.onnx", "cd" * 32, 99, [
        _check("load", "pass", "IR 8"),
        _check("validate-seeded-1", "fail", "mismatch on seed 0",
               {"runs": [{"seed": 0, "ok": False, "first_divergence": "conv2 (Conv)"}]}),
        _check("dmbp-smoke", "skip", "see validate"),
    ], 0.5)  # fmt: skip
    hostile = ModelResult("models/<script>alert(1)</script>.onnx", None, 10, [
        _check("load", "fail", "not a valid ONNX protobuf: <b>&</b>"),
        _check("worker", "error", "the worker process ended with exit code -9"),
    ], 0.1)  # fmt: skip
    return build_report([good, diverging, hostile], AuditConfig(), datetime(2026, 1, 2, tzinfo=timezone.utc), 1.5)

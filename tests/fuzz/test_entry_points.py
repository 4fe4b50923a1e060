"""No public entry point raises a raw torch / numpy / onnxruntime error on a wrong shape, batch,
rank, layout or output: only the project's typed errors (issue 12).

Hypothesis draws the wrong inputs (a bounded number of examples, so the file runs in seconds).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from families import export_family  # noqa: E402
from small_models import conv_net  # noqa: E402

import dmbp_onnx  # noqa: E402
from dmbp_onnx.cli import main  # noqa: E402
from dmbp_onnx.errors import DmbpOnnxError  # noqa: E402

FUZZ = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip

shapes = st.lists(st.integers(0, 9), min_size=1, max_size=5)
names = st.sampled_from(["y", "prob", "box", "", "logits", "x", "nope"])
layouts = st.sampled_from(["NCHW", "NHWC", "NCW", "NWC", "nchw", "CHWN", ""])


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A static-shape classifier, a dynamic-H/W two-output P-Net and a fixed-batch copy of the first."""
    folder = tmp_path_factory.mktemp("fuzz_models")
    fixed = conv_net()
    fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 2
    found = {"static": conv_net(), "pnet": export_family("pnet")[0], "fixed": fixed}
    for name, model in found.items():
        onnx.save(model, str(folder / f"{name}.onnx"))
    return {name: folder / f"{name}.onnx" for name in found}


def _typed_only(call) -> None:
    """Run ``call``; success or a DmbpOnnxError pass, anything else fails the test."""
    try:
        call()
    except DmbpOnnxError:
        pass


@FUZZ
@given(shape=shapes, which=st.sampled_from(["static", "pnet", "fixed"]),
       method=st.sampled_from(["dmbp", "gradient"]))  # fmt: skip
def test_attribute_on_a_wrong_shape_raises_typed_errors(models, shape, which, method):
    twin = dmbp_onnx.load(models[which], output="prob" if which == "pnet" else None)
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    options = {"iterations": 1} if method == "dmbp" else {}
    _typed_only(lambda: dmbp_onnx.METHODS[method](twin, device="cpu", **options).attribute(x))


@FUZZ
@given(shape=shapes, which=st.sampled_from(["static", "pnet", "fixed"]))
def test_validate_on_a_wrong_shape_raises_typed_errors(models, shape, which):
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    _typed_only(lambda: dmbp_onnx.validate(models[which], inputs=[x], device="cpu"))
    _typed_only(lambda: dmbp_onnx.validate(models[which], shapes={"x": shape}, device="cpu"))


@FUZZ
@given(output=names, layout=layouts, which=st.sampled_from(["static", "pnet"]))
def test_load_with_any_output_or_layout_raises_typed_errors(models, output, layout, which):
    _typed_only(lambda: dmbp_onnx.load(models[which], output=output or None, layout=layout or None))


@FUZZ
@given(shape=shapes, output=names, layout=st.sampled_from(["nchw", "nhwc", None]),
       which=st.sampled_from(["static", "pnet", "fixed"]))  # fmt: skip
def test_cli_explain_validate_audit_exit_2_not_a_traceback(models, tmp_path, shape, output, layout, which):
    array = tmp_path / "x.npy"
    np.save(array, np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32))
    dims = "x".join(str(max(d, 1)) for d in shape)
    extra = ["--output", output] if output else []
    explain = ["explain", str(models[which]), "--input-npy", str(array), "--method", "gradient", "--quiet",
               "--out", str(tmp_path / "out"), *extra, *(["--layout", layout] if layout else [])]  # fmt: skip
    runs = [explain, ["validate", str(models[which]), "--shape", f"x={dims}", *extra],
            ["validate", str(models[which]), "--input", str(array), *extra]]
    for argv in runs:
        assert main(argv) in (0, 1, 2)  # a raw exception would propagate out of main


def test_cli_audit_wrong_shape_and_output_fail_checks_without_errors(models, tmp_path):
    report = tmp_path / "audit.json"
    main(["audit", str(models["static"]), str(models["pnet"]), "--samples", "1", "--no-explain",
          "--shape", "x=1x3x2x2", "--output", "nope", "--json", str(report)])  # fmt: skip
    import json

    statuses = [c["status"] for m in json.loads(report.read_text())["models"] for c in m["checks"]]
    assert "error" not in statuses and "fail" in statuses

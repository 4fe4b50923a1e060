"""validate(): the twin against onnxruntime, expected outputs, input checks, and bisection."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

import dmbp_onnx
from dmbp_onnx.cli.validate_cmd import summary
from dmbp_onnx.errors import InputError, UnsupportedModelError
from dmbp_onnx.jsonio import dumps
from dmbp_onnx.runtime import make_session
from dmbp_onnx.validate import ValidationReport, compare, validate
from oracle import check_twin, float_input, init, make_model, reference_outputs

CUDA = torch.cuda.is_available()


def classifier(input_shape=("N", 3, 8, 8), nhwc=False):
    """conv1 -> relu -> conv2 -> relu -> GAP -> flatten -> fc -> softmax (5 classes)."""
    rng = np.random.default_rng(0)
    nodes = []
    x = "x"
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_nchw"], name="to_nchw", perm=[0, 3, 1, 2]))
        x = "x_nchw"
    nodes += [
        helper.make_node("Conv", [x, "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], name="softmax", axis=1),
    ]
    inits = [
        init("w1", 0.3 * rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        init("b1", 0.1 * rng.standard_normal(4).astype(np.float32)),
        init("w2", 0.3 * rng.standard_normal((6, 4, 3, 3)).astype(np.float32)),
        init("wf", rng.standard_normal((5, 6)).astype(np.float32)),
        init("bf", rng.standard_normal(5).astype(np.float32)),
    ]
    return make_model(nodes, [float_input("x", list(input_shape))], [float_input("y", ["N", 5])], inits)


def perturb(twin, onnx_node, delta=0.05):
    """Add ``delta`` to one weight of the submodule built for ``onnx_node``."""
    name = next(sub for sub, node in twin.node_names.items() if node == onnx_node)
    weight = next(p for _, p in twin.module.get_submodule(name).named_parameters() if p.ndim >= 2)
    with torch.no_grad():
        weight.view(-1)[0] += delta


def test_good_model_matches_on_random_inputs():
    model = classifier()
    check_twin(model)
    report = validate(model, device="cpu")
    assert isinstance(report, ValidationReport)
    assert report.ok and report.first_divergence is None and report.divergence is None
    assert report.max_abs < 1e-5 and report.random_inputs and report.input_shapes == [[1, 3, 8, 8]]
    assert [o["name"] for o in report.outputs] == ["y"] and report.outputs[0]["shape"] == [1, 5]
    assert report.top1_agreement == 1.0
    assert report.providers == ["CPUExecutionProvider"] and report.twin_device == "cpu"
    assert json.loads(dumps(report.to_dict()))["ok"] is True


def test_declared_softmax_output_is_compared_not_the_logits():
    twin = dmbp_onnx.load(classifier())
    assert twin.output_activation == ("Softmax", 1)
    report = validate(twin, inputs=[np.ones((3, 3, 8, 8), np.float32)], device="cpu")
    assert report.ok and report.input_shapes == [[3, 3, 8, 8]]
    assert np.allclose(reference_outputs(twin.model, {"x": np.ones((3, 3, 8, 8), np.float32)})[0].sum(1), 1)


@pytest.mark.parametrize("node,op", [("conv1", "Conv"), ("conv2", "Conv"), ("fc", "Gemm")])
def test_bisection_names_the_corrupted_node(node, op):
    twin = dmbp_onnx.load(classifier())
    perturb(twin, node)
    report = validate(twin, inputs=np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32))
    assert not report.ok
    assert report.divergence["node"] == node and report.divergence["op"] == op
    assert report.first_divergence.startswith(f"node '{node}' ({op}): max abs ")
    assert report.divergence["max_abs"] > 1e-3
    assert report.twin_device == ("cuda" if CUDA else "cpu") and twin.device.type == "cpu"


def test_expected_outputs_right_and_wrong():
    model = classifier()
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (right,) = reference_outputs(model, {"x": x})
    good = validate(model, inputs=[x], expected=right, device="cpu")
    assert good.ok and good.expected_max_abs < 1e-5 and good.ort_vs_expected_max_abs == 0.0
    wrong = validate(model, inputs=[x], expected=[right + 0.1], device="cpu")
    assert not wrong.ok and wrong.first_divergence is None
    assert wrong.expected_max_abs == pytest.approx(0.1, abs=1e-5)
    assert wrong.ort_vs_expected_max_abs == pytest.approx(0.1, abs=1e-5)
    assert wrong.outputs[0]["ok"] and not wrong.outputs[0]["expected_ok"]
    assert any("expected" in note for note in wrong.notes)


def test_expected_of_the_wrong_shape_or_count_is_an_input_error():
    model = classifier()
    with pytest.raises(InputError, match=r"output 'y' has shape \[1, 4\]"):
        validate(model, expected=np.zeros((1, 4), np.float32), device="cpu")
    with pytest.raises(InputError, match="2 expected array"):
        validate(model, expected=[np.zeros((1, 5), np.float32)] * 2, device="cpu")


def test_nhwc_model_gets_inputs_in_its_own_layout():
    model = classifier(input_shape=("N", 8, 8, 3), nhwc=True)
    report = validate(model, device="cpu")
    assert report.ok and report.input_shapes == [[1, 8, 8, 3]]
    x = np.random.default_rng(3).standard_normal((2, 8, 8, 3)).astype(np.float32)
    assert validate(model, inputs={"x": x}, device="cpu").ok
    with pytest.raises(InputError, match=r"'x' has shape \[2, 3, 8, 8\].*\[N, 8, 8, 3\]"):
        validate(model, inputs=[x.transpose(0, 3, 1, 2)], device="cpu")


def test_dynamic_dimensions_become_1_for_the_batch_and_224_otherwise_in_random_inputs():
    report = validate(classifier(input_shape=("batch", 3, "height", "width")), device="cpu", seed=7)
    assert report.ok and report.input_shapes == [[1, 3, 224, 224]] and report.seed == 7


@pytest.mark.parametrize(
    "inputs,message",
    [
        ([np.zeros((1, 3, 8, 8), np.float32)] * 2, r"expects 1 input\(s\) \['x'\], got 2"),
        (
            [np.zeros((1, 3, 9, 8), np.float32)],
            r"'x' has shape \[1, 3, 9, 8\], the model declares \[N, 3, 8, 8\]",
        ),
        ([np.zeros((3, 8, 8), np.float32)], r"'x' has shape \[3, 8, 8\]"),
        ([np.zeros((1, 3, 8, 8), np.float64)], "'x' has dtype float64, the model declares float32"),
        ([np.full((1, 3, 8, 8), np.nan, np.float32)], r"'x' \[1, 3, 8, 8\] contains NaN or Inf"),
        ([np.full((1, 3, 8, 8), np.inf, np.float32)], "'x'.*NaN or Inf"),
        ({"image": np.zeros((1, 3, 8, 8), np.float32)}, r"unknown: \['image'\], missing: \['x'\]"),
    ],
)
def test_bad_inputs_raise_input_errors_naming_the_input(inputs, message):
    with pytest.raises(InputError, match=message):
        validate(classifier(), inputs=inputs, device="cpu")


def test_bad_options_raise_input_errors():
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        validate(classifier(), device="tpu")
    with pytest.raises(InputError, match="non-negative"):
        validate(classifier(), rtol=-1.0)


@pytest.mark.skipif(CUDA, reason="checks the refusal on a machine without a GPU")
def test_cuda_requested_without_gpu_is_refused():
    with pytest.raises(InputError, match="no CUDA GPU"):
        validate(classifier(), device="cuda")


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
def test_twin_on_cuda_matches_and_returns_to_its_device():
    twin = dmbp_onnx.load(classifier())
    report = validate(twin, inputs=np.ones((4, 3, 8, 8), np.float32), device="cuda")
    assert report.ok and report.twin_device == "cuda" and twin.device.type == "cpu"
    perturb(twin, "conv2")
    assert validate(twin, device="cuda").divergence["node"] == "conv2"


def test_compare_is_allclose_with_nan_and_shape_handling():
    b = np.array([1.0, -2.0, 0.0, np.nan, np.inf], np.float32)
    same = compare(b.copy(), b, 1e-4, 1e-5)
    assert same["ok"] and same["max_abs"] == 0.0 and same["mismatched"] == 0
    a = b.copy()
    a[1] = -2.001
    off = compare(a, b, 1e-4, 1e-5)
    assert not off["ok"] and off["mismatched"] == 1 and off["max_abs"] == pytest.approx(1e-3, rel=1e-3)
    assert off["max_rel"] == pytest.approx(5e-4, rel=1e-3)
    a = b.copy()
    a[4] = 1.0
    assert compare(a, b, 1e-4, 1e-5)["max_abs"] == np.inf
    assert compare(np.zeros(2), np.zeros(3), 1e-4, 1e-5)["max_abs"] == np.inf


def test_report_json_writes_non_finite_numbers_as_null_and_notes_them():
    report = validate(classifier(), device="cpu")
    report.max_abs, report.outputs[0]["max_rel"] = float("inf"), float("nan")
    text = dumps(report.to_dict())
    data = json.loads(text, parse_constant=_no_constant)
    assert data["max_abs"] is None and data["outputs"][0]["max_rel"] is None
    assert data["non_finite"] == {"/max_abs": "inf", "/outputs/0/max_rel": "nan"}
    assert "max abs inf" in summary("m.onnx", report.to_dict())


def _no_constant(name):
    raise AssertionError(f"{name} is not strict JSON")


def test_session_runs_on_cpu_when_cuda_is_listed_but_unusable(monkeypatch, capsys):
    import onnxruntime as ort

    listed = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: listed)
    if CUDA:
        pytest.skip("CUDA may really work here")
    session = make_session(classifier(), device="auto")
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert capsys.readouterr().out == ""


def test_session_refuses_models_onnxruntime_cannot_load():
    model = classifier()
    model.graph.node[0].op_type = "NoSuchOp"
    with pytest.raises(UnsupportedModelError, match="onnxruntime cannot load the model"):
        make_session(model, device="cpu")
    with pytest.raises(InputError, match="unknown device"):
        make_session(onnx.ModelProto(), device="gpu")

"""Random inputs for models with dynamic height and width: the 224 default and ``--shape``."""

import json

import numpy as np
import onnx
import pytest
from onnx import helper

from dmbp_onnx.cli import main
from dmbp_onnx.errors import InputError
from dmbp_onnx.validate import DEFAULT_SPATIAL, declared_inputs, parse_shape, random_inputs, validate
from oracle import float_input, init, make_model


def fully_convolutional(nhwc: bool = False) -> onnx.ModelProto:
    """conv 3x3 (no padding) -> relu -> maxpool 2 -> conv 3x3 -> relu: a score map, any H x W >= 8.

    NCHW declares ``[N, 3, H, W]``; NHWC declares ``[?, ?, ?, 3]`` as tf2onnx writes a Keras
    ``None x None x 3`` input, transposed to NCHW in the graph.
    """
    rng = np.random.default_rng(0)
    x = "x"
    nodes = []
    if nhwc:
        nodes.append(helper.make_node("Transpose", ["x"], ["x_nchw"], name="to_nchw", perm=[0, 3, 1, 2]))
        x = "x_nchw"
    nodes += [
        helper.make_node("Conv", [x, "w1", "b1"], ["c1"], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2"),
        helper.make_node("Relu", ["c2"], ["y"], name="relu2"),
    ]
    inits = [
        init("w1", 0.3 * rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
        init("b1", 0.1 * rng.standard_normal(4).astype(np.float32)),
        init("w2", 0.3 * rng.standard_normal((2, 4, 3, 3)).astype(np.float32)),
        init("b2", 0.1 * rng.standard_normal(2).astype(np.float32)),
    ]
    shape = [None, None, None, 3] if nhwc else ["N", 3, "H", "W"]
    return make_model(nodes, [float_input("x", shape)], [float_input("y", ["N", 2, "h", "w"])], inits)


@pytest.fixture
def fcn_path(tmp_path):
    path = tmp_path / "fcn.onnx"
    onnx.save(fully_convolutional(), str(path))
    return path


@pytest.mark.parametrize("nhwc", [False, True])
def test_dynamic_height_and_width_default_to_224(nhwc):
    report = validate(fully_convolutional(nhwc), device="cpu")
    expected = [1, 224, 224, 3] if nhwc else [1, 3, 224, 224]
    assert report.ok and report.input_shapes == [expected] and DEFAULT_SPATIAL == 224
    assert report.outputs[0]["shape"] == [1, 2, 109, 109]
    assert any("224" in note and "'x'" in note for note in report.notes)


def test_shapes_choose_the_random_input_shape():
    report = validate(fully_convolutional(), device="cpu", shapes={"x": (2, 3, 40, 24)})
    assert report.ok and report.input_shapes == [[2, 3, 40, 24]] and report.notes == []


def test_a_shape_binds_the_symbolic_dimension_it_names_in_other_inputs():
    specs = declared_inputs(fully_convolutional())
    assert [a.shape for a in random_inputs(specs, 0, {"x": [3, 3, 16, 8]})] == [(3, 3, 16, 8)]
    spec = specs[0]
    pair = [spec, type(spec)("z", ["N", "H", "L"], spec.dtype)]
    shapes = [(3, 3, 16, 8), (3, 16, DEFAULT_SPATIAL)]  # N and H bound by x's shape, L free
    assert [a.shape for a in random_inputs(pair, 0, {"x": [3, 3, 16, 8]})] == shapes


@pytest.mark.parametrize(
    "shapes,message",
    [
        ({"image": (1, 3, 32, 32)}, r"input 'image', but the model's inputs are \['x'\]"),
        ({"x": (1, 3, 32)}, r"\[1, 3, 32\] given for input 'x' contradicts the declared \[N, 3, H, W\]"),
        ({"x": (1, 4, 32, 32)}, r"input 'x' contradicts"),
    ],
)
def test_unusable_shapes_are_input_errors_naming_the_input(shapes, message):
    with pytest.raises(InputError, match=message):
        validate(fully_convolutional(), device="cpu", shapes=shapes)


def test_shapes_with_given_inputs_is_an_input_error():
    x = np.zeros((1, 3, 16, 16), np.float32)
    with pytest.raises(InputError, match="random inputs only"):
        validate(fully_convolutional(), inputs=[x], device="cpu", shapes={"x": (1, 3, 16, 16)})


@pytest.mark.parametrize("text", ["x", "=1x3", "x=1x3xa", "x=1x0x2", "x="])
def test_malformed_shape_text(text):
    with pytest.raises(InputError, match="--shape"):
        parse_shape(text)
    assert parse_shape("a=b=1X3x8x8") == ("a=b", [1, 3, 8, 8])


def test_cli_without_input_validates_at_224(capsys, fcn_path):
    assert main(["validate", str(fcn_path), "--device", "cpu", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["random_inputs"] and report["input_shapes"] == [[1, 3, 224, 224]]


def test_cli_shape_is_used_and_reported(capsys, fcn_path):
    argv = ["validate", str(fcn_path), "--device", "cpu", "--shape", "x=2x3x32x48"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["input_shapes"] == [[2, 3, 32, 48]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("MATCH: fcn.onnx") and "inputs random (seed 0) [[2, 3, 32, 48]]" in out


@pytest.mark.parametrize(
    "option,named",
    [("image=1x3x32x32", "'image'"), ("x=1x3x32", "'x'"), ("x=1x4x32x32", "'x'"), ("x=1x3xbig", "'x'")],
)
def test_cli_bad_shape_exits_2_with_one_line_naming_the_input(capsys, fcn_path, option, named):
    assert main(["validate", str(fcn_path), "--device", "cpu", "--shape", option]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1
    assert lines[0].startswith("dmbp-onnx: error: ") and named in lines[0]


def test_cli_shape_twice_or_with_input_exits_2(capsys, tmp_path, fcn_path):
    argv = ["validate", str(fcn_path), "--device", "cpu", "--shape", "x=1x3x16x16"]
    assert main([*argv, "--shape", "x=1x3x32x32"]) == 2
    assert "input 'x' twice" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 16, 16), np.float32))
    assert main([*argv, "--input", str(tmp_path / "x.npy")]) == 2
    assert "--input" in capsys.readouterr().err


def test_audit_seeded_validation_uses_the_same_default(fcn_path):
    from dmbp_onnx.audit.checks import audit_model
    from dmbp_onnx.audit.config import AuditConfig

    results = {r.name: r for r in audit_model(fcn_path, AuditConfig(samples=1, explain=False))}
    seeded = results["validate-seeded-1"]
    assert seeded.status == "pass", seeded.message
    assert seeded.details["runs"][0]["input_shapes"] == [[1, 3, 224, 224]]

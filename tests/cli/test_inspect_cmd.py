"""``dmbp-onnx inspect``: text and JSON descriptions, eligibility, unbuildable models."""

import json

import onnx
from onnx import helper

from dmbp_onnx.cli import main
from oracle import float_input, make_model


def test_json_describes_the_model(run_cli, model_path):
    done = run_cli("inspect", str(model_path), "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["ir_version"] == 10 and info["opsets"] == {"": 17}
    assert info["inputs"][0]["layout"] == "NCHW" and info["inputs"][0]["shape"] == ["N", 3, 8, 8]
    assert info["ops"] == {"Conv": 1, "Relu": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}
    assert info["mask_sites"] == 1 and info["mask_filters"] == 6 and info["twin"]["ok"]
    assert info["eligibility"] == {"eligible": True, "offending": []}


def test_garbage_file_exits_2_with_one_line(capsys, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07garbage" * 5)
    assert main(["inspect", str(garbage)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1


def test_text_lists_offending_nodes(capsys, sigmoid_model_path):
    assert main(["inspect", str(sigmoid_model_path)]) == 0
    out = capsys.readouterr().out
    assert "layout NCHW (channel axis 1)" in out
    assert "mask sites: 1 (6 filters/units)" in out
    assert "DMBP:       NOT eligible; offending nodes: squash (Sigmoid)" in out


def test_model_without_converter_is_still_described(capsys, tmp_path):
    erf = helper.make_node("Erf", ["x"], ["y"], name="erf")
    model = make_model([erf], [float_input("x", [1, 4])], [float_input("y", [1, 4])])
    path = tmp_path / "erf.onnx"
    onnx.save(model, str(path))
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["twin"]["ok"] is False and "Erf" in info["twin"]["error"] and info["mask_sites"] is None
    assert info["eligibility"]["offending"] == [{"node": "erf", "op": "Erf"}]
    assert main(["inspect", str(path)]) == 0
    assert "twin:       cannot be built: " in capsys.readouterr().out

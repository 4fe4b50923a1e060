"""``dmbp-onnx validate``: exit codes 0/1/2, JSON on stdout, one-line errors."""

import json
import re

import numpy as np
import onnx
import pytest
import torch

import dmbp_onnx.twin.twin as twin_module
from dmbp_onnx.cli import main
from dmbp_onnx.errors import InputError
from oracle import reference_outputs


def _arrays(tmp_path, model_path, shift=0.0):
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    (y,) = reference_outputs(onnx.load(str(model_path)), {"x": x})
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y + shift)
    return str(tmp_path / "x.npy"), str(tmp_path / "y.npy")


def test_match_exits_0_with_one_json_object(run_cli, model_path):
    done = run_cli("validate", str(model_path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {"ok", "max_abs", "max_rel", "first_divergence", "rtol", "atol"} <= set(report)
    assert report["ok"] is True and report["max_abs"] < 1e-5 and report["first_divergence"] is None
    assert report["rtol"] == 1e-4 and report["atol"] == 1e-5


def test_wrong_expected_file_exits_1(run_cli, tmp_path, model_path):
    x, y = _arrays(tmp_path, model_path, shift=0.5)
    done = run_cli("validate", str(model_path), "--input", x, "--expected", y, "--json", "--atol", "1e-4")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["atol"] == 1e-4
    assert report["expected_max_abs"] == pytest.approx(0.5, abs=1e-4)


def test_garbage_model_exits_2_with_one_line(run_cli, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xffnot a model" * 10)
    done = run_cli("validate", str(garbage))
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dmbp-onnx: error: ")


def test_human_summary_on_match(capsys, tmp_path, model_path):
    x, y = _arrays(tmp_path, model_path)
    assert main(["validate", str(model_path), "--input", x, "--expected", y, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("MATCH: net.onnx") and "output 'y' [2, 4]" in out
    assert "top-1 agreement: 100.0%" in out and "inputs given [[2, 3, 8, 8]]" in out


def test_corrupted_twin_reports_the_first_diverging_node(capsys, monkeypatch, model_path):
    real_load = twin_module.load

    def corrupted_load(source, **options):
        twin = real_load(source, **options)
        with torch.no_grad():
            twin.module.get_submodule("conv").weight.view(-1)[0] += 0.1
        return twin

    monkeypatch.setattr(twin_module, "load", corrupted_load)
    assert main(["validate", str(model_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("MISMATCH") and "first divergence: node 'conv' (Conv): max abs" in out


def _npz(path):
    with open(path, "wb") as handle:
        np.savez(handle, a=np.zeros(3))


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: np.save(p, np.zeros((1, 3, 9, 9), np.float32)), r"input 'x' has shape \[1, 3, 9, 9\]"),
        (_npz, r"\.npz archive"),
        (lambda p: p.write_bytes(b"\x00\xffnot an array" * 10), r"x\.npy' is not a \.npy file"),
        (lambda p: None, "cannot read .*x.npy"),
    ],
)
def test_unusable_input_files_exit_2(capsys, tmp_path, model_path, make, message):
    path = tmp_path / "x.npy"
    make(path)
    assert main(["validate", str(model_path), "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("dmbp-onnx: error: ")
    assert re.search(message, err)


@pytest.mark.parametrize("argv", [["--debug", "validate", "M"], ["validate", "M", "--debug"]])
def test_debug_flag_before_or_after_the_subcommand_shows_the_error(tmp_path, model_path, argv):
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((1, 3, 8, 8), np.float64))
    argv = [str(model_path) if a == "M" else a for a in argv] + ["--input", str(bad)]
    with pytest.raises(InputError, match="float64"):
        main(argv)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_cuda_without_gpu_exits_2(capsys, model_path):
    assert main(["validate", str(model_path), "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err

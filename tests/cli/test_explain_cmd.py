"""``dmbp-onnx explain`` end to end: files written, flags, user models and images, exit codes 0/1/2."""

import json
import subprocess
import sys
import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from PIL import Image

import dmbp_onnx.twin.twin as twin_module
from dmbp_onnx import viz
from dmbp_onnx.cli import main
from dmbp_onnx.cli.explain_cmd import METHOD_NAMES
from dmbp_onnx.methods import METHODS
from oracle import float_input, init, make_model

FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(path, shape, mode=None, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path)
    return path


def _report(out):
    return json.loads((Path(out) / "report.json").read_text())


def _explain(*args):
    return main(["explain", *map(str, args), "--iterations", "5", "--device", "cpu"])


def map_net() -> onnx.ModelProto:
    """conv -> relu -> conv: a (N, 2, 8, 8) score map from a (N, 3, 8, 8) image."""
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="conv2"),
    ]
    inits = [init("w1", 0.3 * rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
             init("w2", rng.standard_normal((2, 4, 1, 1)).astype(np.float32))]
    return make_model(nodes, [float_input("x", ["N", 3, 8, 8])], [float_input("y", ["N", 2, 8, 8])], inits)


def test_method_names_are_the_registered_methods():
    assert list(METHOD_NAMES) == list(METHODS)


def test_rule_option_reaches_dmbp(tmp_path):
    assert _explain("--rule", "gradient", "--out", tmp_path / "g") == 0
    assert _report(tmp_path / "g")["hyperparameters"]["dmbp"]["rule"] == "gradient"
    assert _explain("--out", tmp_path / "d") == 0
    assert _report(tmp_path / "d")["hyperparameters"]["dmbp"]["rule"] == "lrp-gamma"
    assert main(["explain", "--rule", "gradient", "--method", "ig", "--out", str(tmp_path / "i")]) == 2


def test_regions_option_reaches_dmbp(tmp_path):
    assert _explain("--regions", "1", "--out", tmp_path / "r") == 0
    assert _report(tmp_path / "r")["hyperparameters"]["dmbp"]["regions"] == 1
    assert _report(tmp_path / "r")["hyperparameters"]["dmbp"]["rule"] == "lrp-gamma"
    assert main(["explain", "--regions", "0", "--out", str(tmp_path / "z")]) == 2
    assert main(["explain", "--regions", "2", "--method", "ig", "--out", str(tmp_path / "i")]) == 2


def test_default_run_from_any_cwd_writes_png_npz_json(tmp_path):
    entry = "import sys; from dmbp_onnx.cli import main; sys.exit(main(['explain', '--iterations', '5']))"
    done = subprocess.run([sys.executable, "-c", entry], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "dmbp_out"
    assert "circle" in done.stdout and "report  dmbp_out/report.json" in done.stdout
    assert "DMBP" not in done.stderr and "%|" not in done.stderr  # no progress bar off a TTY
    for suffix in ("overlay", "panel"):
        assert (out / f"sample_circle.dmbp.{suffix}.png").read_bytes()[:8] == PNG_MAGIC
    with np.load(out / "sample_circle.dmbp.npz") as arrays:
        assert arrays["signed"].shape == (3, 64, 64) and arrays["display"].shape == (64, 64)
        assert arrays["loss_history"].shape == (5,)
    report = _report(out)
    item = report["images"][0]
    assert item["target_name"] == "circle" and 0.5 < item["probability"] <= 1
    assert len(item["probabilities"]) == 6 and sum(item["probabilities"]) == pytest.approx(1, abs=1e-5)
    assert report["validation"][0]["ok"] is True and report["iterations"] == {"dmbp": 5}
    assert report["hyperparameters"]["dmbp"]["lr"] > 0 and report["device"] == "cpu"
    assert report["model"]["path"].endswith("demo.onnx") and report["wall_time_s"] > 0


def test_ineligible_model_exits_2_naming_the_node(run_cli, sigmoid_model_path, tmp_path):
    done = run_cli("explain", str(sigmoid_model_path), str(_png(tmp_path / "a.png", (8, 8, 3))),
                   "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "not piecewise linear" in done.stderr and "squash (Sigmoid)" in done.stderr
    assert not (tmp_path / "o").exists()


def test_user_model_folder_of_mixed_images(capsys, tmp_path, model_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    _png(folder / "rgb.png", (20, 30, 3))
    _png(folder / "gray.png", (16, 16), "L")
    _png(folder / "rgba.png", (12, 10, 4), "RGBA")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert _explain(model_path, folder, "--out", out, "--target", "2", "--batch-size", "2") == 0
    stdout = capsys.readouterr().out
    report = _report(out)
    assert [Path(i["input"]).name for i in report["images"]] == ["gray.png", "rgb.png", "rgba.png"]
    assert all(i["target"] == 2 and i["target_label"] == "class 2" for i in report["images"])
    assert len(report["validation"]) == 2  # batches of 2 then 1
    with np.load(out / "rgb.dmbp.npz") as arrays:
        assert arrays["display"].shape == (20, 30)  # resized back to the image
        assert arrays["signed"].shape == (3, 8, 8) and arrays["input"].shape == (3, 8, 8)
    width, height = Image.open(out / "rgba.dmbp.overlay.png").size  # sized to the 12 x 10 image
    assert height > width / 2 and 200 < width < 500
    assert "rgb.dmbp.panel.png" in stdout and "score" in stdout


def test_nhwc_model_from_the_same_images(tmp_path):  # tf2onnx: NHWC, Flatten via Shape/Gather/Concat
    image = _png(tmp_path / "photo.png", (40, 50, 3))
    out = tmp_path / "out"
    assert _explain(FOREIGN / "keras_tf_cnn.onnx", image, "--out", out, "--quiet") == 0
    report = _report(out)
    assert report["model"]["layout"] == "NHWC" and report["preprocess"]["size"] == [32, 32]
    assert "Softmax split off" in report["model"]["explains"]
    item = report["images"][0]
    assert item["target"] == int(np.argmax(item["probabilities"]))
    with np.load(out / "photo.dmbp.npz") as arrays:
        assert arrays["signed"].shape == (32, 32, 3) and arrays["display"].shape == (40, 50)


def test_method_all_writes_one_comparison_sheet(capsys, tmp_path, model_path):
    out = tmp_path / "out"
    assert _explain(model_path, _png(tmp_path / "a.png", (8, 8, 3)), "--method", "all", "--out", out) == 0
    report = _report(out)
    installed = [m for m in METHODS if m != "lrp" or importlib.util.find_spec("zennit") is not None]
    assert report["methods"] == installed  # lrp needs the optional zennit
    files = report["images"][0]["files"]
    assert Path(files["comparison"]).read_bytes()[:8] == PNG_MAGIC
    n = min(1 + len(installed), viz.MAX_COLUMNS)  # rows of at most MAX_COLUMNS square panels, a colour bar
    assert Image.open(files["comparison"]).size[0] == round(
        viz.DPI * (n * viz.PANEL_INCHES + (n - 1) * viz.GAP_INCHES + viz.COLORBAR_INCHES + 2 * viz.PAD_INCHES))
    assert all(f"{m}_overlay" in files for m in installed)
    assert report["hyperparameters"]["ig"]["steps"] > 0 and set(report["method_wall_time_s"]) == set(installed)


def test_map_model_box_target(capsys, tmp_path):
    path = tmp_path / "map.onnx"
    model = map_net()
    onnx.save(model, str(path))
    image = _png(tmp_path / "a.png", (16, 16, 3))
    out = tmp_path / "out"
    assert _explain(path, image, "--target", "1", "--box", "2", "3", "5", "7", "--out", out,
                    "--method", "gradient", "--quiet") == 0
    item = _report(out)["images"][0]
    assert item["target"] == {"channel": 1, "box": [2, 3, 5, 7], "channel_axis": None}
    assert item["probabilities"] is None and item["target_label"] == "channel 1, box 2,3,5,7"
    x = np.load(out / "a.gradient.npz")["input"][None]
    import onnxruntime as ort

    (y,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    assert item["score"] == pytest.approx(float(y[0, 1, 2:5, 3:7].sum()), rel=1e-4, abs=1e-4)


def test_input_npy(tmp_path, model_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32))
    out = tmp_path / "out"
    assert _explain(model_path, "--input-npy", tmp_path / "x.npy", "--out", out, "--method", "gradient",
                    "--quiet") == 0
    items = _report(out)["images"]
    assert [i["index"] for i in items] == [0, 1]
    assert (out / "x_1.gradient.overlay.png").exists() and (out / "x_2.gradient.npz").exists()


def test_quiet_prints_nothing(capsys, tmp_path, model_path):
    assert _explain(model_path, _png(tmp_path / "a.png", (8, 8, 3)), "--out", tmp_path / "o", "--quiet") == 0
    assert capsys.readouterr() == ("", "")


def test_report_json_is_strict_when_a_value_is_nan(monkeypatch, tmp_path, model_path):
    import dmbp_onnx.explain as explain_module

    monkeypatch.setattr(explain_module, "_probabilities", lambda output, *_: torch.full_like(output, float("nan")))
    out = tmp_path / "out"
    assert _explain(model_path, _png(tmp_path / "a.png", (8, 8, 3)), "--out", out, "--quiet") == 0

    def refuse(name):
        raise AssertionError(f"{name} is not strict JSON")

    report = json.loads((out / "report.json").read_text(), parse_constant=refuse)
    assert report["images"][0]["probability"] is None and report["images"][0]["probabilities"][0] is None
    assert report["non_finite"]["/images/0/probability"] == "nan"


def _corrupt(monkeypatch):
    real_load = twin_module.load

    def corrupted_load(source, **options):
        twin = real_load(source, **options)
        with torch.no_grad():
            twin.module.get_submodule("conv").weight.view(-1)[0] += 0.1
        return twin

    monkeypatch.setattr(twin_module, "load", corrupted_load)


def test_mismatch_refuses_with_exit_1_naming_the_node(capsys, monkeypatch, tmp_path, model_path):
    _corrupt(monkeypatch)
    out = tmp_path / "out"
    assert _explain(model_path, _png(tmp_path / "a.png", (8, 8, 3)), "--out", out) == 1
    err = capsys.readouterr().err
    assert err.startswith("dmbp-onnx: mismatch: ") and "node 'conv' (Conv)" in err and "--force" in err
    assert not (out / "a.dmbp.overlay.png").exists()


def test_force_explains_despite_a_mismatch(capsys, monkeypatch, tmp_path, model_path):
    _corrupt(monkeypatch)
    out = tmp_path / "out"
    assert _explain(model_path, _png(tmp_path / "a.png", (8, 8, 3)), "--out", out, "--force") == 0
    assert "WARNING twin disagrees" in capsys.readouterr().out
    report = _report(out)
    assert report["forced"] is True and report["validation"][0]["ok"] is False
    assert "conv" in report["validation"][0]["first_divergence"]


@pytest.mark.parametrize(
    "make_args,message",
    [
        (lambda t, m: [m, t / "missing.png"], "missing.png' does not exist"),
        (lambda t, m: [m, _text_as_png(t)], "cannot read .*bad.png as an image"),
        (lambda t, m: [m, _png(t / "a.png", (8, 8, 3)), "--mean", "0.1", "0.2"], "mean has 2 values; .* 3 input"),
        (lambda t, m: [m, _png(t / "a.png", (8, 8, 3)), "--box", "0", "0", "1", "1"], "--box applies only"),
        (lambda t, m: [m, _png(t / "a.png", (8, 8, 3)), "--target", "cat"], "unknown target 'cat'"),
        (lambda t, m: [m, _png(t / "a.png", (8, 8, 3)), "--target", "9"], "out of range for 4 classes"),
        (lambda t, m: [_png(t / "a.png", (8, 8, 3))], "looks like an image; the first argument is the ONNX"),
        (lambda t, m: [m], "no images given"),
    ],
)
def test_bad_inputs_exit_2_with_one_line(capsys, tmp_path, model_path, make_args, message):
    import re

    assert _explain(*make_args(tmp_path, model_path), "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert err.startswith("dmbp-onnx: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def test_wrong_channel_count_npy_exits_2(capsys, tmp_path, model_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 4, 8, 8), np.float32))
    assert _explain(model_path, "--input-npy", tmp_path / "x.npy", "--out", tmp_path / "o") == 2
    assert "does not fit the declared input shape [?, 3, 8, 8]" in capsys.readouterr().err


def _text_as_png(tmp_path):
    path = tmp_path / "bad.png"
    path.write_text("this is not a PNG")
    return path

"""The explain job's building blocks: image collection, targets, output names, batching, boxes."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dmbp_onnx.errors import InputError
from dmbp_onnx.explain import (
    ExplainRequest,
    _batches,
    _draw_box,
    _output_box,
    _unique_stems,
    collect_images,
    default_image,
    default_model,
    explain,
    parse_target,
    request_targets,
)
from dmbp_onnx.methods import BoxTarget


def test_defaults_are_shipped_files():
    assert default_model().is_file() and default_model().suffix == ".onnx"
    assert default_image().is_file() and default_image().suffix == ".png"


def test_collect_images_expands_folders_sorted_and_skips_other_files(tmp_path):
    for name in ("b.png", "a.JPG", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    single = tmp_path / "c.txt"
    assert collect_images([tmp_path, single]) == [tmp_path / "a.JPG", tmp_path / "b.png", single]


def test_collect_images_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        collect_images([tmp_path / "nope.png"])
    with pytest.raises(InputError, match="contains no image files"):
        collect_images([tmp_path])


def test_parse_target():
    assert parse_target("auto", None) is None
    assert parse_target("3", None) == 3
    assert parse_target("square", ["circle", "square"]) == 1
    with pytest.raises(InputError, match="known classes: circle, square"):
        parse_target("cat", ["circle", "square"])
    with pytest.raises(InputError, match="names no classes"):
        parse_target("cat", None)


def test_request_targets_classifier_and_map():
    logits = torch.tensor([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0]])
    assert request_targets("auto", None, logits, None) == [1, 0]
    assert request_targets("2", None, logits, None) == [2, 2]
    with pytest.raises(InputError, match="--box applies only"):
        request_targets("auto", (0, 0, 1, 1), logits, None)
    score_map = torch.zeros(2, 2, 4, 6)
    score_map[1, 1, 0, 0] = 5.0
    region = request_targets("auto", None, score_map, None)
    assert [(t.channel, t.pixels) for t in region] == [(0, 24), (1, 1)]
    assert request_targets("1", (0, 1, 2, 3), score_map, None) == [BoxTarget(1, (0, 1, 2, 3))] * 2


def test_unique_stems_number_repeats_only():
    paths = [Path("a/x.png"), Path("b/x.jpg"), Path("y.png")]
    assert _unique_stems(paths) == ["x_1", "x_2", "y"]


def test_batches_split_on_size_and_on_shape_change():
    items = [(i, np.zeros(shape), None) for i, shape in enumerate([(1, 3, 4, 4)] * 3 + [(1, 3, 5, 5)])]
    got = [(start, [item[0] for item in batch]) for start, batch in _batches(items, 2)]
    assert got == [(0, [0, 1]), (2, [2]), (3, [3])]


def test_output_box_scales_map_coordinates_to_the_image():
    target = BoxTarget(0, (2, 4, 3, 8))
    assert _output_box(target, (1, 2, 8, 16), (16, 32)) == (4, 8, 6, 16)  # NCHW map at half size
    assert _output_box(target, (1, 8, 16, 2), (16, 32)) == (4, 8, 6, 16)  # NHWC map
    assert _output_box(BoxTarget(0), (1, 2, 8, 16), (16, 32)) is None
    assert _output_box(3, (1, 10), (16, 32)) is None


def test_draw_box_outlines_only_the_border():
    image = np.zeros((20, 20, 3), np.float32)
    boxed = _draw_box(image, (5, 5, 15, 15))
    assert image.max() == 0  # not modified in place
    assert boxed[5, 10].tolist() == pytest.approx([1.0, 0.85, 0.0]) and boxed[10, 10].max() == 0
    assert boxed[4, 10].max() == 0 and boxed[13, 10].max() > 0 and boxed[12, 10].max() == 0


@pytest.mark.parametrize(
    "request_kwargs,message",
    [
        ({"input_npy": Path("x.npy"), "images": [Path("a.png")], "model": Path("m.onnx")}, "not both"),
        ({"images": [Path("a.png")]}, "without a model"),
        ({"batch_size": 0}, "--batch-size must be at least 1"),
        ({"iterations": -1}, "--iterations must be non-negative"),
        ({"methods": []}, "no attribution method"),
    ],
)
def test_contradictory_requests_are_refused_before_loading(tmp_path, request_kwargs, message):
    with pytest.raises(InputError, match=message):
        explain(ExplainRequest(out=tmp_path / "o", **request_kwargs))
    assert not (tmp_path / "o").exists()


def _with_batch(model, batch):
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim.ClearField("dim_param")
    dim.dim_value = batch
    return model


@pytest.mark.parametrize("batch", [2, 4])
def test_a_fixed_batch_model_explains_any_number_of_images(tmp_path, batch):
    import onnx
    from small_models import conv_net

    images = np.random.default_rng(5).standard_normal((3, 3, 8, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", images)
    reports = {}
    for name, model in (("fixed", _with_batch(conv_net(), batch)), ("dynamic", conv_net())):
        onnx.save(model, str(tmp_path / f"{name}.onnx"))
        request = ExplainRequest(model=tmp_path / f"{name}.onnx", input_npy=tmp_path / "x.npy",
                                 methods=["gradient", "dmbp"], iterations=3, device="cpu", out=tmp_path / name)
        reports[name] = explain(request).to_dict()
    fixed, dynamic = reports["fixed"], reports["dynamic"]
    assert len(fixed["images"]) == 3 and all(v["ok"] for v in fixed["validation"])
    assert [v["input_shapes"] for v in fixed["validation"]] == [[[batch, 3, 8, 8]]] * (3 // batch + 1)
    for got, want in zip(fixed["images"], dynamic["images"]):
        assert got["target"] == want["target"] and got["score"] == pytest.approx(want["score"], rel=1e-6)
    for stem in ("x_1", "x_2", "x_3"):
        with np.load(tmp_path / "fixed" / f"{stem}.gradient.npz") as a, \
                np.load(tmp_path / "dynamic" / f"{stem}.gradient.npz") as b:
            np.testing.assert_allclose(a["signed"], b["signed"], rtol=1e-5, atol=1e-7)

"""Preprocessing: configuration from metadata / shape / overrides, image modes, layouts, errors."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper
from oracle import float_input, make_model
from PIL import Image

from dmbp_onnx.errors import InputError
from dmbp_onnx.preprocess import PreprocessConfig, load_image, load_npy, resize_map


def _model(shape, meta=None) -> onnx.ModelProto:
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])], [float_input("x", shape)], [float_input("y", shape)]
    )
    for key, value in (meta or {}).items():
        model.metadata_props.add(key=key, value=value)
    return model


META = {
    "dmbp.layout": "NCHW",
    "dmbp.size": "8,6",
    "dmbp.scale": "255",
    "dmbp.mean": "0.5,0.25,0",
    "dmbp.std": "0.5,0.25,1",
    "dmbp.class_names": '["a", "b"]',
    "dmbp.output": "logits",
}


def test_config_from_metadata():
    cfg = PreprocessConfig.from_model(_model(["N", 3, "H", "W"], META))
    assert cfg.layout == "NCHW" and cfg.size == (8, 6) and cfg.channels == 3
    assert cfg.mean == (0.5, 0.25, 0.0) and cfg.std == (0.5, 0.25, 1.0)
    assert cfg.class_names == ("a", "b") and cfg.output == "logits" and cfg.scale == 255.0


def test_overrides_win_over_metadata_and_none_is_ignored():
    cfg = PreprocessConfig.from_model(
        _model(["N", 3, "H", "W"], META), size="4,4", mean=[0.1], std=None, scale=1.0, output="probabilities"
    )
    assert cfg.size == (4, 4) and cfg.mean == (0.1,) and cfg.std == (0.5, 0.25, 1.0)
    assert cfg.scale == 1.0 and cfg.output == "probabilities"


def test_fallback_to_declared_shape():
    nchw = PreprocessConfig.from_model(_model([1, 3, 10, 12]))
    assert (nchw.layout, nchw.size, nchw.channels) == ("NCHW", (10, 12), 3)
    nhwc = PreprocessConfig.from_model(_model(["N", 20, 30, 1]))
    assert (nhwc.layout, nhwc.size, nhwc.channels) == ("NHWC", (20, 30), 1)
    dynamic = PreprocessConfig.from_model(_model(["N", 3, "H", "W"]))
    assert dynamic.size is None and dynamic.mean == (0.0,) and dynamic.std == (1.0,)
    explicit = PreprocessConfig.from_model(_model(["N", "C", "H", "W"]), declared_input_shape=[1, 16, 16, 3])
    assert (explicit.layout, explicit.size) == ("NHWC", (16, 16))


@pytest.mark.parametrize(
    "meta, overrides, match",
    [
        ({"dmbp.mean": "a,b,c"}, {}, "dmbp.mean"),
        ({"dmbp.size": "64"}, {}, "dmbp.size"),
        ({"dmbp.class_names": "{not json"}, {}, "dmbp.class_names"),
        ({}, {"layout": "NCWH"}, "layout"),
        ({}, {"std": "0,1,1"}, "std"),
        ({}, {"mean": "0,0"}, "mean has 2 values"),
        ({}, {"size": (5, 5)}, "contradicts"),
    ],
)
def test_bad_configuration_raises(meta, overrides, match):
    with pytest.raises(InputError, match=match):
        PreprocessConfig.from_model(_model([1, 3, 4, 4], meta), **overrides)


def test_model_with_four_channels_is_refused():
    with pytest.raises(InputError, match="4 input channels"):
        PreprocessConfig.from_model(_model([1, 4, 8, 8]))


def _save(tmp_path, name, array, mode=None, **kw):
    path = tmp_path / name
    img = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    img.save(path, **kw)
    return path


def test_rgb_image_normalised_in_nchw(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    cfg = PreprocessConfig(size=(8, 6), mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    loaded = load_image(_save(tmp_path, "a.png", rgb), cfg)
    expected = ((rgb / 255.0 - [0.5, 0.25, 0.0]) / [0.5, 0.25, 1.0]).transpose(2, 0, 1)[None]
    assert loaded.array.dtype == np.float32 and loaded.array.shape == (1, 3, 8, 6)
    np.testing.assert_allclose(loaded.array, expected, atol=1e-5)
    np.testing.assert_allclose(loaded.original, rgb / 255.0, atol=1e-6)


def test_nhwc_layout_and_resize(tmp_path):
    rgb = np.full((20, 30, 3), 200, np.uint8)
    loaded = load_image(_save(tmp_path, "a.png", rgb), PreprocessConfig(layout="NHWC", size=(10, 12)))
    assert loaded.array.shape == (1, 10, 12, 3)
    np.testing.assert_allclose(loaded.array, 200 / 255.0, atol=1e-5)
    assert loaded.original.shape == (20, 30, 3)


def test_grayscale_image_for_rgb_and_gray_models(tmp_path):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    path = _save(tmp_path, "g.png", gray, "L")
    rgb_model = load_image(path, PreprocessConfig())
    assert rgb_model.array.shape == (1, 3, 6, 8)
    np.testing.assert_allclose(rgb_model.array[0, 1], gray / 255.0, atol=1e-6)
    assert rgb_model.original.shape == (6, 8, 3)
    gray_model = load_image(path, PreprocessConfig(channels=1, layout="NHWC"))
    assert gray_model.array.shape == (1, 6, 8, 1)


def test_rgb_image_to_gray_model_uses_luma(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255
    loaded = load_image(_save(tmp_path, "r.png", rgb), PreprocessConfig(channels=1))
    np.testing.assert_allclose(loaded.array, 0.299, atol=1e-5)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:2, :, 3] = 255
    loaded = load_image(_save(tmp_path, "t.png", rgba, "RGBA"), PreprocessConfig())
    np.testing.assert_allclose(loaded.original[0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(loaded.original[3, 0], [1.0, 1.0, 1.0])


def test_palette_image(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:, :2] = (0, 0, 255)
    path = tmp_path / "p.png"
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=4).save(path)
    assert Image.open(path).mode == "P"
    loaded = load_image(path, PreprocessConfig())
    np.testing.assert_allclose(loaded.original[0, 0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(loaded.original[0, 3], [0.0, 0.0, 0.0])


def test_sixteen_bit_grayscale(tmp_path):
    path = tmp_path / "d.png"
    Image.fromarray(np.full((3, 3), 65535, np.uint16)).save(path)
    loaded = load_image(path, PreprocessConfig())
    np.testing.assert_allclose(loaded.original, 1.0, atol=1e-6)


def test_missing_and_non_image_files(tmp_path):
    with pytest.raises(InputError, match="nope.png"):
        load_image(tmp_path / "nope.png", PreprocessConfig())
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(InputError, match="bad.png"):
        load_image(bad, PreprocessConfig())


def test_load_npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones((3, 4, 4), np.float64))
    arr = load_npy(path, ["N", 3, 4, 4])
    assert arr.shape == (1, 3, 4, 4) and arr.dtype == np.float32
    with pytest.raises(InputError, match="does not fit"):
        load_npy(path, [1, 3, 5, 4])
    np.save(path, np.full((1, 3, 4, 4), np.nan))
    with pytest.raises(InputError, match="NaN"):
        load_npy(path, [1, 3, 4, 4])
    with pytest.raises(InputError, match="not found"):
        load_npy(tmp_path / "missing.npy", [1])


def test_resize_map():
    m = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = resize_map(m, (8, 12))
    assert out.shape == (8, 12) and out.dtype == np.float32
    assert out.min() >= m.min() and out.max() <= m.max()
    np.testing.assert_array_equal(resize_map(m, (4, 4)), m)
    with pytest.raises(InputError):
        resize_map(np.zeros((2, 2, 2)), (4, 4))


def test_channels_override_contradicting_shape():
    with pytest.raises(InputError, match="channels 1 contradicts"):
        PreprocessConfig.from_model(_model([1, 3, 4, 4]), channels=1)


def test_exif_orientation_applied(tmp_path):
    rgb = np.zeros((2, 4, 3), np.uint8)
    path = tmp_path / "o.jpg"
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, exif=exif)
    assert load_image(path, PreprocessConfig()).original.shape == (4, 2, 3)

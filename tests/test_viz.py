"""Visualisation: PNG files of the documented size, red for evidence for, blue for evidence against."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dmbp_onnx.errors import InputError
from dmbp_onnx.viz import blend, comparison_png, overlay_png, panel_png

H, W = 16, 20


@pytest.fixture
def image():
    return np.full((H, W, 3), 0.5, np.float32)


@pytest.fixture
def heat():
    m = np.zeros((H, W), np.float32)
    m[:, : W // 2] = 1.0
    m[:, W // 2 :] = -1.0
    return m


def _png(path):
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB")).astype(int)


def _red_left_of_blue(rgb):
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
    blue = (rgb[..., 2] > 200) & (rgb[..., 0] < 60) & (rgb[..., 1] < 60)
    assert red.sum() > 100 and blue.sum() > 100
    return np.nonzero(red)[1].mean() < np.nonzero(blue)[1].mean()


def test_blend_colours_and_transparency(image, heat):
    out = blend(image, heat)
    assert out[0, 0, 0] > 0.9 and out[0, 0, 2] < 0.1
    assert out[0, -1, 2] > 0.9 and out[0, -1, 0] < 0.1
    np.testing.assert_allclose(blend(image, np.zeros((H, W))), image)


def test_overlay_png(tmp_path, image, heat):
    path = overlay_png(image, heat, tmp_path / "o.png", "overlay")
    assert path == tmp_path / "o.png"
    rgb = _png(path)
    assert rgb.shape == (420, 500, 3)
    assert _red_left_of_blue(rgb[:, :380])


def test_panel_png(tmp_path, image, heat):
    positive, negative = np.clip(heat, 0, 1), np.clip(heat, -1, 0)
    rgb = _png(panel_png(image, positive, negative, np.zeros((H, W)), tmp_path / "p.png", "p"))
    assert rgb.shape == (440, 1600, 3)
    assert _red_left_of_blue(rgb[:, :1300])


def test_comparison_png(tmp_path, image):
    maps = {"for": np.ones((H, W)), "against": -np.ones((H, W)), "none": np.zeros((H, W))}
    rgb = _png(comparison_png(image, maps, tmp_path / "c.png", "cmp"))
    assert rgb.shape == (360, 320 * 4, 3)
    assert _red_left_of_blue(rgb[:, :1050])
    swapped = {"against": -np.ones((H, W)), "for": np.ones((H, W))}
    assert not _red_left_of_blue(_png(comparison_png(image, swapped, tmp_path / "s.png"))[:, :800])


def test_bad_inputs(tmp_path, image):
    with pytest.raises(InputError, match="does not match"):
        overlay_png(image, np.zeros((3, 3)), tmp_path / "x.png")
    with pytest.raises(InputError, match="RGB"):
        overlay_png(np.zeros((H, W)), np.zeros((H, W)), tmp_path / "x.png")
    with pytest.raises(InputError, match="at least one"):
        comparison_png(image, {}, tmp_path / "x.png")


def test_blend_over_grayscale_by_default():
    rgb = np.zeros((2, 2, 3), np.float32)
    rgb[..., 2] = 1.0
    zero = np.zeros((2, 2))
    np.testing.assert_allclose(blend(rgb, zero), 0.114, atol=1e-6)
    np.testing.assert_allclose(blend(rgb, zero, grayscale=False), rgb)

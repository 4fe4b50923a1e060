"""Visualisation: PNG files sized to their content, red for evidence for, blue for evidence against."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dmbp_onnx.errors import InputError
from dmbp_onnx.viz import (
    COLORBAR_INCHES,
    DPI,
    GAP_INCHES,
    LAYOUT_INCHES,
    MAX_COLUMNS,
    PAD_INCHES,
    PANEL_INCHES,
    TITLE_POINTS,
    blend,
    comparison_png,
    overlay_png,
    panel_png,
)

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


def _margins(rgb):
    """Blank rows/columns at the top, bottom, left and right of a figure."""
    ink = (rgb < 250).any(2)
    rows, cols = np.nonzero(ink.any(1))[0], np.nonzero(ink.any(0))[0]
    return rows[0], len(ink) - 1 - rows[-1], cols[0], ink.shape[1] - 1 - cols[-1]


def _sized_to_content(rgb):
    """Nothing cut at the edges (a blank border) and no wide empty margin (labels of tall panels
    may overhang their image by up to a tenth of the width)."""
    top, bottom, left, right = _margins(rgb)
    return all(2 <= m <= 25 for m in (top, bottom)) and all(2 <= m <= max(25, 0.1 * rgb.shape[1])
                                                            for m in (left, right))


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
    assert rgb.shape[:2] == (round(DPI * (PANEL_INCHES * H / W + TITLE_POINTS * 1.5 / 72 + 2 * PAD_INCHES
                                          + LAYOUT_INCHES)),
                             round(DPI * (PANEL_INCHES + COLORBAR_INCHES + 2 * PAD_INCHES)))
    assert _sized_to_content(rgb) and _red_left_of_blue(rgb[:, :300])


def test_panel_png(tmp_path, image, heat):
    positive, negative = np.clip(heat, 0, 1), np.clip(heat, -1, 0)
    rgb = _png(panel_png(image, positive, negative, np.zeros((H, W)), tmp_path / "p.png", "p"))
    assert rgb.shape[1] == round(DPI * (4 * PANEL_INCHES + 3 * GAP_INCHES + COLORBAR_INCHES + 2 * PAD_INCHES))
    assert _sized_to_content(rgb) and _red_left_of_blue(rgb[:, :1200])


def test_comparison_png(tmp_path, image):
    maps = {"for": np.ones((H, W)), "against": -np.ones((H, W)), "none": np.zeros((H, W))}
    rgb = _png(comparison_png(image, maps, tmp_path / "c.png", "cmp"))
    assert rgb.shape[1] == round(DPI * (4 * PANEL_INCHES + 3 * GAP_INCHES + COLORBAR_INCHES + 2 * PAD_INCHES))
    assert _sized_to_content(rgb) and _red_left_of_blue(rgb[:, :1200])
    swapped = {"against": -np.ones((H, W)), "for": np.ones((H, W))}
    assert not _red_left_of_blue(_png(comparison_png(image, swapped, tmp_path / "s.png"))[:, :800])


def test_comparison_of_many_methods_wraps_into_rows(tmp_path, image):
    maps = {f"m{k}": np.full((H, W), 1.0 if k % 2 else -1.0) for k in range(8)}
    rgb = _png(comparison_png(image, maps, tmp_path / "w.png", "nine panels"))
    columns = MAX_COLUMNS
    assert rgb.shape[1] == round(DPI * (columns * PANEL_INCHES + (columns - 1) * GAP_INCHES + COLORBAR_INCHES
                                        + 2 * PAD_INCHES))
    assert rgb.shape[0] > 2 * DPI * PANEL_INCHES * H / W
    assert _sized_to_content(rgb)


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


@pytest.mark.parametrize("h, w", [(200, 50), (40, 120), (8, 8)])
def test_panels_follow_the_image_aspect_without_empty_margins(tmp_path, h, w):
    image, heat = np.full((h, w, 3), 0.5, np.float32), np.ones((h, w), np.float32)
    long_title = "smoothgrad · target channel 1, box 2,3,5,7 · score 0.295 · p=0.129 " * 2
    for name, path in (("o", overlay_png(image, heat, tmp_path / "o.png", long_title)),
                       ("p", panel_png(image, heat, -heat, heat, tmp_path / "p.png", long_title)),
                       ("c", comparison_png(image, {"a": heat, "b": -heat}, tmp_path / "c.png", long_title))):
        rgb = _png(path)
        assert _sized_to_content(rgb), (name, _margins(rgb))
        if name == "o":  # one panel: the figure's aspect follows the image's
            assert (rgb.shape[0] > rgb.shape[1]) == (h > 2 * w)

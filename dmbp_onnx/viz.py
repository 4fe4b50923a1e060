"""Heatmap overlays and comparison sheets written as PNG (matplotlib Agg, no pyplot state).

Maps are signed and expected in [-1, 1] (values outside are clipped for display): red is
evidence for the target, blue evidence against, on the diverging ``bwr`` colormap centred at 0.
The map is alpha-blended with opacity ``|map|`` over a grayscale copy of the image (so the image's
own colours cannot be mistaken for evidence), and the image stays visible where the map is about 0.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from dmbp_onnx.errors import InputError

CMAP = "bwr"
DPI = 100
#: Longer side of one image panel, inches (at :data:`DPI`: 300 pixels).
PANEL_INCHES = 3.0
#: Panels are drawn with the image's aspect ratio, clamped to [1 / MAX_ASPECT, MAX_ASPECT].
MAX_ASPECT = 4.0
#: Narrowest labelled panel, inches (the labels of tall images' panels must not overlap).
LABELLED_PANEL_INCHES = 1.4
#: Room for the colour bar with its tick labels, between panels, for panel labels, around the figure.
COLORBAR_INCHES, GAP_INCHES, LABEL_INCHES, PAD_INCHES = 1.35, 0.1, 0.3, 0.05
#: Height the layout engine keeps between title, labels and panels, inches.
LAYOUT_INCHES = 0.12
#: Font sizes of the title and of the labels, points.
TITLE_POINTS, LABEL_POINTS = 12, 9
#: Mean glyph width of the title font as a share of its size (DejaVu Sans, measured), for wrapping.
TITLE_GLYPH = 0.55
#: Panels per row; a sheet of more methods wraps into further rows (it stays readable at page width).
MAX_COLUMNS = 5
_NORM = Normalize(vmin=-1.0, vmax=1.0)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def blend(image: np.ndarray, heat: np.ndarray, grayscale: bool = True) -> np.ndarray:
    """Alpha-blend a signed map over an image.

    Parameters
    ----------
    image : numpy.ndarray
        float RGB (h, w, 3) in [0, 1].
    heat : numpy.ndarray
        float (h, w) in [-1, 1]; clipped to that range.
    grayscale : bool
        Blend over the image's luma (ITU-R 601-2) instead of its colours.

    Returns
    -------
    numpy.ndarray
        float32 RGB (h, w, 3): ``base * (1 - |heat|) + bwr(heat) * |heat|``.
    """
    image, heat = _check(image, heat)
    if grayscale:
        image = np.repeat(image @ _LUMA, 3).reshape(image.shape)
    colour = colormaps[CMAP](_NORM(heat))[..., :3].astype(np.float32)
    alpha = np.abs(heat)[..., None]
    return image * (1.0 - alpha) + colour * alpha


def overlay_png(image: np.ndarray, heat: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Write one overlay of a signed map on its image, with a colour bar.

    Parameters
    ----------
    image : numpy.ndarray
        float RGB (h, w, 3) in [0, 1].
    heat : numpy.ndarray
        Signed map (h, w) in [-1, 1].
    path : str or pathlib.Path
        PNG file to write, sized to the image's aspect ratio (see :func:`_figure`).
    title : str
        Figure title (wrapped to the figure's width).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    image, heat = _check(image, heat)
    fig, axes = _figure(image.shape[:2], 1, title, labelled=False)
    _show(axes[0], blend(image, heat), "")
    _colorbar(fig, axes)
    return _save(fig, path)


def panel_png(
    image: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    signed: np.ndarray,
    path: str | Path,
    title: str = "",
    labels: tuple[str, str] = ("positive (for)", "negative (against)"),
) -> Path:
    """Write four panels: image, positive evidence, negative evidence, signed map.

    Parameters
    ----------
    image : numpy.ndarray
        float RGB (h, w, 3) in [0, 1].
    positive : numpy.ndarray
        (h, w) evidence for the target, in [0, 1]; shown in red.
    negative : numpy.ndarray
        (h, w) evidence against, as magnitudes in [0, 1] or values in [-1, 0] (its absolute
        value is shown, in blue).
    signed : numpy.ndarray
        (h, w) signed map in [-1, 1].
    path : str or pathlib.Path
        PNG file to write, sized to the image's aspect ratio (see :func:`_figure`).
    title : str
        Figure title (wrapped to the figure's width).
    labels : tuple of str
        Titles of the positive and negative panels (e.g. with each map's share of the mass when
        the two are scaled separately).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    image, _ = _check(image, signed)
    fig, axes = _figure(image.shape[:2], 4, title)
    _show(axes[0], image, "image")
    _show(axes[1], blend(image, np.clip(positive, 0.0, None)), labels[0])
    _show(axes[2], blend(image, -np.abs(negative)), labels[1])
    _show(axes[3], blend(image, signed), "signed")
    _colorbar(fig, axes)
    return _save(fig, path)


def comparison_png(
    image: np.ndarray, maps: Mapping[str, np.ndarray], path: str | Path, title: str = ""
) -> Path:
    """Write one sheet: the image, then every method's signed map side by side, one colour bar.

    Parameters
    ----------
    image : numpy.ndarray
        float RGB (h, w, 3) in [0, 1].
    maps : mapping of str to numpy.ndarray
        Method name -> signed map (h, w) in [-1, 1], in display order; all drawn on the same
        [-1, 1] scale.
    path : str or pathlib.Path
        PNG file to write, sized to the image's aspect ratio (see :func:`_figure`).
    title : str
        Figure title (wrapped to the figure's width).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if not maps:
        raise InputError("comparison_png needs at least one map")
    image = _check(image, None)[0]
    fig, axes = _figure(image.shape[:2], 1 + len(maps), title)
    _show(axes[0], image, "image")
    for ax, (name, heat) in zip(axes[1:], maps.items()):
        _show(ax, blend(image, heat), name)
    _colorbar(fig, axes)
    return _save(fig, path)


def _figure(size: tuple[int, int], panels: int, title: str, labelled: bool = True) -> tuple[Figure, list[Axes]]:
    """A figure of ``panels`` image panels, :data:`MAX_COLUMNS` to a row, and a colour bar, sized to the content.

    Each panel's longer side is :data:`PANEL_INCHES` (its aspect ratio is the image's, clamped to
    :data:`MAX_ASPECT`; a labelled one is at least :data:`LABELLED_PANEL_INCHES` wide); the figure
    adds only the colour bar, the panel labels and the title (wrapped to the figure's width), with
    :data:`PAD_INCHES` around, so there are no empty margins. Slots after the last panel of a
    wrapped sheet stay blank.
    """
    h, w = size
    aspect = min(max(h / w, 1.0 / MAX_ASPECT), MAX_ASPECT)
    panel_w, panel_h = PANEL_INCHES * min(1.0, 1.0 / aspect), PANEL_INCHES * min(1.0, aspect)
    if labelled:  # a tall image's panel keeps room for its label
        panel_w = max(panel_w, LABELLED_PANEL_INCHES)
    columns = min(panels, MAX_COLUMNS)
    rows = -(-panels // columns)
    width = columns * panel_w + (columns - 1) * GAP_INCHES + COLORBAR_INCHES + 2 * PAD_INCHES
    lines = textwrap.wrap(title, max(16, int(width * 72 / (TITLE_POINTS * TITLE_GLYPH)))) if title else []
    height = rows * (panel_h + (LABEL_INCHES if labelled else 0.0)) + (rows - 1) * GAP_INCHES \
        + len(lines) * TITLE_POINTS * 1.5 / 72 + 2 * PAD_INCHES + LAYOUT_INCHES
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    fig.get_layout_engine().set(w_pad=PAD_INCHES, h_pad=PAD_INCHES, wspace=0.02, hspace=0.0)
    axes = [fig.add_subplot(rows, columns, i + 1) for i in range(panels)]
    if lines:
        fig.suptitle("\n".join(lines), fontsize=TITLE_POINTS)
    return fig, axes


def _check(image: np.ndarray, heat: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate shapes; return float32 image in [0, 1] and the map clipped to [-1, 1]."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"image must be RGB (h, w, 3), got shape {image.shape}")
    image = np.clip(image, 0.0, 1.0)
    if heat is None:
        return image, None
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape != image.shape[:2]:
        raise InputError(f"map shape {heat.shape} does not match image size {image.shape[:2]}")
    if not np.isfinite(heat).all():
        raise InputError("map contains NaN or infinite values")
    return image, np.clip(heat, -1.0, 1.0)


def _show(ax: Axes, rgb: np.ndarray, label: str) -> None:
    """Draw an RGB array without ticks."""
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    if label:
        ax.set_title(label, fontsize=LABEL_POINTS + 1)


def _colorbar(fig: Figure, axes: list[Axes]) -> None:
    """One colour bar for the signed scale shared by every panel, beside ``axes``."""
    bar = fig.colorbar(ScalarMappable(norm=_NORM, cmap=CMAP), ax=axes, fraction=0.9, aspect=15,
                       pad=0.02, shrink=0.9)
    bar.set_ticks([-1.0, -0.5, 0.0, 0.5, 1.0], labels=["−1 against", "−0.5", "0", "0.5", "+1 for"])
    bar.ax.tick_params(labelsize=LABEL_POINTS)


def _save(fig: Figure, path: str | Path) -> Path:
    """Render with Agg and write a PNG."""
    path = Path(path)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=DPI)
    return path

"""Heatmap overlays and comparison sheets written as PNG (matplotlib Agg, no pyplot state).

Maps are signed and expected in [-1, 1] (values outside are clipped for display): red is
evidence for the target, blue evidence against, on the diverging ``bwr`` colormap centred at 0.
The map is alpha-blended with opacity ``|map|`` over a grayscale copy of the image (so the image's
own colours cannot be mistaken for evidence), and the image stays visible where the map is about 0.
"""

from __future__ import annotations

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
        PNG file to write (500 x 420 pixels).
    title : str
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    fig = Figure(figsize=(5.0, 4.2), dpi=DPI)
    ax = fig.add_subplot(1, 1, 1)
    _show(ax, blend(image, heat), "")
    _colorbar(fig, [ax])
    fig.suptitle(title)
    return _save(fig, path)


def panel_png(
    image: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    signed: np.ndarray,
    path: str | Path,
    title: str = "",
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
        PNG file to write (1600 x 440 pixels).
    title : str
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    image, _ = _check(image, signed)
    fig = Figure(figsize=(16.0, 4.4), dpi=DPI)
    axes = [fig.add_subplot(1, 4, i + 1) for i in range(4)]
    _show(axes[0], image, "image")
    _show(axes[1], blend(image, np.clip(positive, 0.0, None)), "positive (for)")
    _show(axes[2], blend(image, -np.abs(negative)), "negative (against)")
    _show(axes[3], blend(image, signed), "signed")
    _colorbar(fig, axes)
    fig.suptitle(title)
    return _save(fig, path)


def comparison_png(
    image: np.ndarray, maps: Mapping[str, np.ndarray], path: str | Path, title: str = ""
) -> Path:
    """Write one sheet: the image, then every method's signed map side by side.

    Parameters
    ----------
    image : numpy.ndarray
        float RGB (h, w, 3) in [0, 1].
    maps : mapping of str to numpy.ndarray
        Method name -> signed map (h, w) in [-1, 1], in display order.
    path : str or pathlib.Path
        PNG file to write (``320 * (1 + len(maps))`` x 360 pixels).
    title : str
        Figure title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    if not maps:
        raise InputError("comparison_png needs at least one map")
    n = 1 + len(maps)
    fig = Figure(figsize=(3.2 * n, 3.6), dpi=DPI)
    axes = [fig.add_subplot(1, n, i + 1) for i in range(n)]
    _show(axes[0], _check(image, None)[0], "image")
    for ax, (name, heat) in zip(axes[1:], maps.items()):
        _show(ax, blend(image, heat), name)
    _colorbar(fig, axes)
    fig.suptitle(title)
    return _save(fig, path)


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
        ax.set_title(label)


def _colorbar(fig: Figure, axes: list[Axes]) -> None:
    """One colour bar for the signed scale, beside ``axes``."""
    bar = fig.colorbar(ScalarMappable(norm=_NORM, cmap=CMAP), ax=axes, fraction=0.046, pad=0.04)
    bar.set_label("against  <-  0  ->  for")


def _save(fig: Figure, path: str | Path) -> Path:
    """Render with Agg and write a PNG."""
    path = Path(path)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=DPI)
    return path

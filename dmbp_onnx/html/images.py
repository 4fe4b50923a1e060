"""Images inlined in the page: RGB arrays as ``data:`` URIs of PNGs, and the colour bar."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

#: Smallest side, in pixels, an inlined image is upscaled to (nearest neighbour) so tiny
#: model inputs stay visible without the browser blurring them.
MIN_SIDE = 128
#: Largest side, in pixels, of an inlined image (larger ones are downscaled: the page stays small).
MAX_SIDE = 512


def png_uri(rgb: np.ndarray, min_side: int = MIN_SIDE) -> str:
    """A ``data:image/png;base64`` URI of an RGB image.

    Parameters
    ----------
    rgb : numpy.ndarray
        ``(h, w, 3)`` floats in [0, 1] or uint8.
    min_side : int
        Upscale by a whole factor until the smaller side is at least this (0: never); an image
        whose larger side exceeds :data:`MAX_SIDE` is downscaled to it instead.
    """
    array = np.asarray(rgb)
    if array.dtype != np.uint8:
        array = np.round(np.clip(array, 0.0, 1.0) * 255).astype(np.uint8)
    image = Image.fromarray(array, "RGB")
    factor = -(-min_side // max(1, min(image.size)))
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.LANCZOS)
    elif factor > 1:
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def colorbar_uri(width: int = 256, height: int = 14) -> str:
    """The signed colour scale of :mod:`dmbp_onnx.viz` (-1 blue, 0 white, +1 red) as a PNG URI."""
    from matplotlib import colormaps

    from dmbp_onnx.viz import CMAP

    row = colormaps[CMAP](np.linspace(0.0, 1.0, width))[:, :3]
    return png_uri(np.repeat(row[None], height, axis=0), min_side=0)

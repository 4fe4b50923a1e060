"""The explained box of map models, in image pixels and drawn on the picture."""

from __future__ import annotations

import numpy as np

#: Colour of the explained box drawn on map models' images (RGB in [0, 1]).
BOX_COLOUR = (1.0, 0.85, 0.0)


def _output_box(target, output_shape, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The explained box in image pixels ``(y0, x0, y1, x1)``, for 2-D map outputs."""
    if getattr(target, "box", None) is None or len(output_shape) != 4:
        return None
    axis = 3 if output_shape[3] < output_shape[1] else 1
    oh, ow = [d for a, d in enumerate(output_shape) if a not in (0, axis)]
    y0, x0, y1, x1 = target.box
    h, w = size
    return (int(y0 * h / oh), int(x0 * w / ow), int(np.ceil(y1 * h / oh)), int(np.ceil(x1 * w / ow)))


def _draw_box(image: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """A copy of ``image`` with the box outlined (at least 2 px, thicker on large images)."""
    if box is None:
        return image
    image = image.copy()
    h, w = image.shape[:2]
    y0, x0, y1, x1 = max(0, box[0]), max(0, box[1]), min(h, box[2]), min(w, box[3])
    t = max(2, max(h, w) // 120)  # survives the figures' downscaling
    for rows, cols in (((y0, y0 + t), (x0, x1)), ((y1 - t, y1), (x0, x1)),
                       ((y0, y1), (x0, x0 + t)), ((y0, y1), (x1 - t, x1))):
        image[rows[0]:rows[1], cols[0]:cols[1]] = BOX_COLOUR
    return image

"""Masks per spatial region: a grid of ``g x g`` cells over a site's two spatial axes, one mask per filter
and cell (docs/method.md §6.9).

A site's masks are then ``(batch, channels * cells)``, filter-major (filter ``c``, cell ``k`` at
``c * cells + k``), so everything that handles per-filter masks (initialisation, the box projection,
Adam, the iterates) handles them unchanged; only applying a mask to an activation and reducing a
mask gradient back differ.
"""

from __future__ import annotations

import torch


class RegionGrid:
    """The cells of one site: which cell each spatial position belongs to.

    Parameters
    ----------
    shape : torch.Size
        The site's activation shape, 4-D: batch, channels and two spatial axes in either order.
    channel_axis : int
        The filter axis (1 for NCHW, 3 or -1 for NHWC).
    cells : int
        ``g``: the grid is ``g x g`` cells, fewer along an axis shorter than ``g``. Rows and columns
        are split as evenly as integer division allows.

    Attributes
    ----------
    channels : int
        Filters of the site.
    count : int
        Cells of the grid.
    index : torch.Tensor
        ``(H * W,)`` long: the cell of each spatial position, row-major.
    """

    def __init__(self, shape: torch.Size, channel_axis: int, cells: int) -> None:
        if len(shape) != 4:
            raise ValueError(f"a region grid needs a 4-D activation, got shape {tuple(shape)}")
        self.axis = channel_axis % 4
        if self.axis not in (1, 3):
            raise ValueError(f"the filter axis must be 1 (NCHW) or 3 (NHWC), got {channel_axis}")
        self.channels = int(shape[self.axis])
        height, width = (shape[2], shape[3]) if self.axis == 1 else (shape[1], shape[2])
        rows, cols = min(cells, height), min(cells, width)
        row = torch.arange(height) * rows // height
        col = torch.arange(width) * cols // width
        self.count = rows * cols
        self.index = (row[:, None] * cols + col[None, :]).flatten()
        self._spatial = (height, width)

    def expand(self, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, channels * count)`` masks as a tensor that broadcasts over the activation (its shape)."""
        batch = mask.shape[0]
        per_position = mask.reshape(batch, self.channels, self.count)[:, :, self.index.to(mask.device)]
        full = per_position.reshape(batch, self.channels, *self._spatial)
        return full if self.axis == 1 else full.permute(0, 2, 3, 1)

    def reduce(self, t: torch.Tensor) -> torch.Tensor:
        """Sum an activation-shaped ``t`` over each cell's positions: ``(batch, channels * count)`` (fp32 at
        least, as the per-filter reduction)."""
        dtype = torch.promote_types(t.dtype, torch.float32)
        nchw = t if self.axis == 1 else t.permute(0, 3, 1, 2)
        flat = nchw.reshape(t.shape[0], self.channels, -1).to(dtype)
        out = torch.zeros(t.shape[0], self.channels, self.count, dtype=dtype, device=t.device)
        return out.index_add_(2, self.index.to(t.device), flat).flatten(1)

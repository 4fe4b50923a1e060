"""Region grids of masks (dmbp_onnx/methods/masked/regions.py): cells, expansion and its adjoint."""

from __future__ import annotations

import pytest
import torch

from dmbp_onnx.methods.masked.regions import RegionGrid


@pytest.mark.parametrize("axis", [1, 3])
def test_reduce_is_the_adjoint_of_expand(axis):
    shape = torch.Size((2, 5, 7, 6)) if axis == 1 else torch.Size((2, 7, 6, 5))
    grid = RegionGrid(shape, axis, cells=3)
    assert grid.channels == 5 and grid.count == 9
    g = torch.Generator().manual_seed(0)
    mask, t = torch.rand(2, 5 * 9, generator=g), torch.randn(shape, generator=g)
    expanded = grid.expand(mask)
    assert expanded.shape == shape
    torch.testing.assert_close((expanded * t).sum(), (mask * grid.reduce(t)).sum())


def test_cells_split_rows_and_columns_evenly_and_stop_at_the_axis_length():
    grid = RegionGrid(torch.Size((1, 1, 4, 3)), 1, cells=2)
    assert grid.index.reshape(4, 3).tolist() == [[0, 0, 1], [0, 0, 1], [2, 2, 3], [2, 2, 3]]
    assert RegionGrid(torch.Size((1, 2, 2, 1)), 1, cells=4).count == 2  # 2 rows x 1 column


def test_a_grid_needs_a_four_dimensional_activation_with_its_filters_first_or_last():
    with pytest.raises(ValueError, match="4-D"):
        RegionGrid(torch.Size((2, 8)), 1, cells=2)
    with pytest.raises(ValueError, match="filter axis"):
        RegionGrid(torch.Size((2, 3, 4, 5)), 2, cells=2)

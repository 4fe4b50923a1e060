"""Pointing game and energy in the mask on hand-made maps."""

import numpy as np
import pytest

from dmbp_onnx.errors import InputError
from dmbp_onnx.metrics import energy_in_mask, pointing_game


def _mask(size=224):
    mask = np.zeros((1, size, size), bool)
    mask[0, 100:140, 100:140] = True
    return mask


def _peak(row, col, size=224):
    maps = np.zeros((1, size, size))
    maps[0, row, col] = 1.0
    return maps


def test_hit_inside_miss_far_outside_and_tolerance():
    mask = _mask()
    assert pointing_game(_peak(120, 120), mask).hits.tolist() == [True]
    assert pointing_game(_peak(10, 10), mask).hits.tolist() == [False]
    near = pointing_game(_peak(120, 150), mask)  # 11 px right of the object
    assert near.hits.tolist() == [True] and near.distances[0] == pytest.approx(11.0)
    assert pointing_game(_peak(120, 160), mask).hits.tolist() == [False]  # 21 px
    assert pointing_game(_peak(120, 160), mask, tolerance_px=25).hits.tolist() == [True]


def test_tolerance_scales_with_the_image_size():
    big = np.zeros((1, 448, 448), bool)
    big[0, 200:280, 200:280] = True
    result = pointing_game(_peak(240, 305, 448), big)  # 26 px away, tolerance 30 px at 448
    assert result.tolerance == pytest.approx(30.0)
    assert result.hits.tolist() == [True]
    small = pointing_game(_peak(120, 150)[:, ::2, ::2], _mask()[:, ::2, ::2])
    assert small.tolerance == pytest.approx(7.5)


def test_ties_must_all_hit_and_a_flat_map_misses():
    mask = _mask()
    maps = _peak(120, 120) + _peak(10, 10)
    assert pointing_game(maps, mask).hits.tolist() == [False]
    both = np.concatenate([np.zeros((1, 224, 224)), _peak(120, 120)])
    result = pointing_game(both, np.concatenate([mask, mask]))
    assert result.hits.tolist() == [False, True] and result.accuracy == 0.5


def test_energy_in_mask():
    mask = np.zeros((3, 4, 4), bool)
    mask[:, :2, :] = True
    maps = np.zeros((3, 4, 4))
    maps[0, 0, 0], maps[0, 3, 3] = 3.0, 1.0
    maps[1, 3, 3], maps[1, 0, 0] = 2.0, -5.0  # negative mass is ignored
    np.testing.assert_allclose(energy_in_mask(maps, mask)[:2], [0.75, 0.0])
    assert np.isnan(energy_in_mask(maps, mask)[2])


def test_bad_masks_raise():
    with pytest.raises(InputError, match="empty"):
        pointing_game(np.zeros((1, 4, 4)), np.zeros((1, 4, 4), bool))
    with pytest.raises(InputError, match="boolean"):
        energy_in_mask(np.zeros((1, 4, 4)), np.ones((1, 4, 4)))
    with pytest.raises(InputError, match="both be"):
        energy_in_mask(np.zeros((1, 4, 4)), np.ones((1, 4, 5), bool))

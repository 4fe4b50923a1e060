"""The synthetic shapes dataset: deterministic, masks are the shapes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "demo"))
import shapes  # noqa: E402


def test_same_seed_same_arrays_and_prefix_stable():
    a = shapes.make_split(12, seed=5)
    b = shapes.make_split(12, seed=5)
    c = shapes.make_split(6, seed=5)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x[:6], z)
    d = shapes.make_split(12, seed=6)
    assert not np.array_equal(a[0], d[0])


def test_split_types_and_shapes():
    images, masks, labels = shapes.make_split(30, seed=0)
    assert images.dtype == np.uint8 and images.shape == (30, shapes.SIZE, shapes.SIZE, 3)
    assert masks.dtype == bool and masks.shape == (30, shapes.SIZE, shapes.SIZE)
    assert labels.shape == (30,) and set(labels) <= set(range(len(shapes.CLASS_NAMES)))


def test_test_split_is_held_out_and_stable():
    assert shapes.TEST_SEED != shapes.TRAIN_SEED
    images, masks, labels = shapes.test_split(8)
    np.testing.assert_array_equal(images, shapes.make_split(8, shapes.TEST_SEED)[0])


def test_masks_are_the_painted_shape():
    images, masks, _ = shapes.make_split(30, seed=3)
    for img, mask in zip(images.astype(float), masks):
        assert 40 < mask.sum() < 0.5 * mask.size
        assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
        inside, outside = img[mask], img[~mask]
        assert inside.std(axis=0).max() < 20
        assert np.linalg.norm(inside.mean(0) - outside.mean(0)) > 40


@pytest.mark.parametrize(
    "name, area",
    [
        ("circle", np.pi),
        ("ring", np.pi * (1 - 0.55**2)),
        ("square", 1.4**2),
        ("triangle", 3 * np.sqrt(3) / 4),
        ("cross", 2 * 0.6 * 1.9 - 0.6**2),
    ],
)
def test_mask_geometry(name, area):
    r = 40.0
    mask = shapes.shape_mask(name, 128, 64.0, 64.0, r, angle=0.3)
    assert mask.sum() / r**2 == pytest.approx(area, rel=0.03)
    ys, xs = np.nonzero(mask)
    assert ((ys - 64.0) ** 2 + (xs - 64.0) ** 2).max() <= r**2 + 1e-6


def test_classes_differ():
    masks = [shapes.shape_mask(n, 64, 32.0, 32.0, 20.0, 0.0) for n in shapes.CLASS_NAMES]
    for i in range(len(masks)):
        for j in range(i):
            assert (masks[i] ^ masks[j]).sum() > 50
    with pytest.raises(ValueError, match="hexagon"):
        shapes.shape_mask("hexagon", 64, 32.0, 32.0, 20.0, 0.0)

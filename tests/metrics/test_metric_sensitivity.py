"""Sensitivity-n on a linear model, where Gradient x Input is each pixel's exact contribution."""

import math

import numpy as np
import pytest
import torch

from dmbp_onnx.errors import InputError
from dmbp_onnx.metrics import pearson, sensitivity_n, target_scorer


def test_exact_contributions_score_one_at_every_fraction(linear, images):
    score = target_scorer(linear.twin, [0] * len(images))
    result = sensitivity_n(score, images, linear.contributions(images), n_subsets=20)
    assert sorted(result) == [0.01, 0.05, 0.1, 0.2, 0.5]
    for fraction, entry in result.items():
        assert entry.n_undefined == 0
        assert entry.subset_size == max(1, round(fraction * 144))
        np.testing.assert_allclose(entry.per_image, 1.0, atol=1e-4)


def test_patch_subsets_score_one_too(linear, images):
    score = target_scorer(linear.twin, [0] * len(images))
    result = sensitivity_n(score, images, linear.contributions(images), (0.1, 0.5), 20, patch=5)
    assert result[0.1].subset_size == 1  # 3 x 3 = 9 blocks of up to 5 x 5 pixels
    assert result[0.5].subset_size == 4
    for entry in result.values():
        np.testing.assert_allclose(entry.per_image, 1.0, atol=1e-4)


def test_a_random_map_scores_about_zero(linear, images):
    score = target_scorer(linear.twin, [0] * len(images))
    noise = torch.from_numpy(np.random.default_rng(5).standard_normal((8, 12, 12)))
    result = sensitivity_n(score, images, noise, (0.1, 0.5), n_subsets=50)
    for entry in result.values():
        assert abs(entry.mean) < 0.15


def test_baseline_is_honoured_and_nhwc_works(linear, images):
    nhwc = images.permute(0, 2, 3, 1).contiguous()
    maps = linear.contributions(images, baseline=0.7)
    result = sensitivity_n(linear.score_fn(-1), nhwc, maps, (0.2,), 20, baseline=0.7, channel_axis=-1)
    np.testing.assert_allclose(result[0.2].per_image, 1.0, atol=1e-4)
    wrong = sensitivity_n(linear.score_fn(-1), nhwc, maps, (0.2,), 20, baseline=0.0, channel_axis=-1)
    assert wrong[0.2].mean < 0.99


def test_constant_vectors_are_nan_and_counted(linear, images):
    result = sensitivity_n(linear.score_fn(), images, torch.zeros(8, 12, 12), (0.1,), 10)
    assert result[0.1].n_undefined == 8
    assert math.isnan(result[0.1].mean)
    assert np.isnan(result[0.1].per_image).all()
    assert math.isnan(pearson(np.ones(5), np.arange(5.0)))


def test_seeded_and_independent_of_batching(linear, images):
    noise = np.random.default_rng(3).standard_normal((8, 12, 12))
    maps = linear.contributions(images) + torch.from_numpy(noise)
    a = sensitivity_n(linear.score_fn(), images, maps, (0.05,), 15, seed=4, batch_size=7)
    b = sensitivity_n(linear.score_fn(), images, maps, (0.05,), 15, seed=4, batch_size=64)
    c = sensitivity_n(linear.score_fn(), images[:3], maps[:3], (0.05,), 15, seed=4)
    d = sensitivity_n(linear.score_fn(), images, maps, (0.05,), 15, seed=5)
    np.testing.assert_allclose(a[0.05].per_image, b[0.05].per_image, rtol=1e-6)
    np.testing.assert_allclose(a[0.05].per_image[:3], c[0.05].per_image, rtol=1e-6)
    assert not np.allclose(a[0.05].per_image, d[0.05].per_image)


def test_bad_arguments_raise(linear, images):
    with pytest.raises(InputError, match="maps must have shape"):
        sensitivity_n(linear.score_fn(), images, torch.zeros(8, 3, 12, 12))
    with pytest.raises(InputError, match="fractions"):
        sensitivity_n(linear.score_fn(), images, torch.zeros(8, 12, 12), (1.5,))
    with pytest.raises(InputError, match="one score per input"):
        sensitivity_n(lambda x, i: x.sum(dim=(2, 3)), images, torch.zeros(8, 12, 12), (0.1,), 4)

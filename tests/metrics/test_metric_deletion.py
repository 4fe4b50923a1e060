"""Deletion / insertion curves on a linear model, where the exact curve is known."""

import numpy as np
import pytest
import torch

from dmbp_onnx.errors import InputError
from dmbp_onnx.metrics import deletion_auc, gaussian_blur, insertion_auc, resolve_baseline, target_scorer


def test_true_map_deletes_faster_and_inserts_faster_than_reversed(linear, images):
    score = target_scorer(linear.twin, [0] * len(images))
    maps = linear.contributions(images)
    true_del, rev_del = deletion_auc(score, images, maps), deletion_auc(score, images, -maps)
    true_ins, rev_ins = insertion_auc(score, images, maps, baseline="zero"), insertion_auc(
        score, images, -maps, baseline="zero"
    )
    assert (true_del.auc < rev_del.auc).all()
    assert (true_ins.auc > rev_ins.auc).all()
    assert true_del.fractions[0] == 0 and true_del.fractions[-1] == 1 and len(true_del.fractions) == 51


def test_deletion_curve_equals_the_remaining_contributions(linear, images):
    maps = linear.contributions(images).numpy().astype(np.float64)
    result = deletion_auc(linear.score_fn(), images, maps, step=0.25, batch_size=5)
    counts = np.rint(result.fractions * 144).astype(int)
    for i in range(len(images)):
        ordered = np.sort(maps[i].ravel())[::-1]
        expected = [linear.bias + ordered[k:].sum() for k in counts]
        np.testing.assert_allclose(result.curves[i], expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(result.curves[:, 0], result.score_original, rtol=1e-6)
    np.testing.assert_allclose(result.curves[:, -1], linear.bias, atol=1e-5)


def test_insertion_starts_at_the_blurred_image_and_ends_at_the_image(linear, images):
    score = linear.score_fn()
    result = insertion_auc(score, images, linear.contributions(images), blur_sigma=1.5)
    blurred = gaussian_blur(images, 1.5, 1)
    np.testing.assert_allclose(result.curves[:, 0], score(blurred, None).numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(result.curves[:, -1], result.score_original, rtol=1e-6)


def test_normalised_auc_is_nan_where_the_score_is_not_positive(linear, images):
    result = deletion_auc(linear.score_fn(), images, linear.contributions(images), step=0.1)
    positive = result.score_original > 0
    assert 0 < positive.sum() < len(images)  # the seeded images give both signs
    assert result.n_undefined == (~positive).sum()
    assert np.isnan(result.auc_normalised[~positive]).all()
    expected = result.auc[positive] / result.score_original[positive]
    np.testing.assert_allclose(result.auc_normalised[positive], expected)


def test_baselines():
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 3, 9, 7)).astype(np.float32))
    flat = torch.full((1, 3, 9, 7), 2.5)
    torch.testing.assert_close(gaussian_blur(flat, 2.0, 1), flat)
    nhwc = gaussian_blur(x.permute(0, 2, 3, 1), 1.0, -1)
    torch.testing.assert_close(nhwc.permute(0, 3, 1, 2), gaussian_blur(x, 1.0, 1))
    blurred = gaussian_blur(x, 1.0, 1)
    assert blurred.std() < x.std()
    mean = resolve_baseline(x, "mean", 1)
    torch.testing.assert_close(mean[:, :, 4, 2], x.mean(dim=(2, 3)))
    assert (resolve_baseline(x, 0.3, 1) == 0.3).all()
    torch.testing.assert_close(resolve_baseline(x, flat[0], 1), flat.expand(2, 3, 9, 7))
    with pytest.raises(InputError, match="baseline must be"):
        resolve_baseline(x, "noise", 1)
    with pytest.raises(InputError, match="does not broadcast"):
        resolve_baseline(x, torch.zeros(4), 1)

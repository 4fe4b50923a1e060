"""Bootstrap intervals: coverage of a known mean, pairing, and NaN handling."""

import numpy as np
import pytest

from dmbp_onnx.metrics import bootstrap_mean, paired_difference


def test_interval_covers_the_true_mean_and_shrinks_with_more_images():
    rng = np.random.default_rng(1)
    small = bootstrap_mean(rng.normal(0.3, 1.0, 50))
    large = bootstrap_mean(rng.normal(0.3, 1.0, 2000))
    assert small.low < 0.3 < small.high
    assert large.low < 0.3 < large.high
    assert (large.high - large.low) < (small.high - small.low) / 3


def test_paired_difference_sees_a_small_consistent_gain_that_unpaired_means_hide():
    rng = np.random.default_rng(2)
    base = rng.normal(0.0, 1.0, 100)  # large spread between images
    better = base + 0.05 + rng.normal(0.0, 0.01, 100)
    a, b = bootstrap_mean(better), bootstrap_mean(base)
    assert a.low < b.high  # the unpaired intervals overlap
    d = paired_difference(better, base)
    assert d.low > 0.04 and d.high < 0.06


def test_non_finite_values_are_dropped_and_reported_as_none():
    i = bootstrap_mean([np.nan, 1.0, np.inf])
    assert i.n == 1 and i.mean == 1.0
    assert i.as_dict() == {"mean": 1.0, "low": None, "high": None, "n": 1}
    assert bootstrap_mean([]).as_dict()["mean"] is None
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])

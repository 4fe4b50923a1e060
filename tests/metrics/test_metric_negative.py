"""The negative map's share of the mass, and the empty-negative-map rule."""

import numpy as np

from dmbp_onnx.metrics import empty_negative_maps, negative_share, signed_negative_share


def test_negative_share_of_separate_maps():
    positive = np.array([[3.0, 1.0], [2.0, 0.0]])
    negative = np.array([[0.0, -1.0], [0.0, 0.0]])
    np.testing.assert_allclose(negative_share(positive, negative), [0.2, 0.0])


def test_signed_share_splits_by_sign():
    signed = np.array([[[1.0, -1.0], [2.0, 0.0]]])
    np.testing.assert_allclose(signed_negative_share(signed), [0.25])
    assert signed_negative_share(np.zeros((1, 2, 2)))[0] == 0.0


def test_empty_only_where_the_reference_has_negative_evidence():
    share = np.array([0.0, 0.0, 0.05])
    reference = np.array([0.3, 0.05, 0.3])
    assert empty_negative_maps(share, reference).tolist() == [True, False, False]

"""metrics.evaluate: every metric in one call, for class, box and region targets."""

import numpy as np
import pytest
import torch
from onnx import helper

from dmbp_onnx.methods.target import BoxTarget, RegionTarget
from dmbp_onnx.metrics import (
    deletion_auc,
    energy_in_mask,
    evaluate,
    insertion_auc,
    pointing_game,
    selector_scorer,
    sensitivity_n,
    target_regions,
    target_scorer,
)
from oracle import check_twin, float_input, init, make_model

FAST = {"fractions": (0.1, 0.5), "n_subsets": 4, "step": 0.25}


@pytest.fixture(scope="module")
def dense():
    """A twin with a (N, 2, 12, 12) score map: a 3x3 'same' convolution of the image."""
    rng = np.random.default_rng(1)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", pads=[1, 1, 1, 1])
    model = make_model(
        [node], [float_input("x", ["N", 3, 12, 12])], [float_input("y", ["N", 2, 12, 12])],
        [init("w", rng.standard_normal((2, 3, 3, 3)).astype(np.float32))],
    )  # fmt: skip
    return check_twin(model)


def _maps(n: int) -> np.ndarray:
    return np.random.default_rng(2).standard_normal((n, 12, 12))


def test_class_targets_give_each_metrics_own_numbers(two_layer, images):
    maps, targets = _maps(len(images)), [k % 2 for k in range(len(images))]
    result = evaluate(two_layer, images, maps, targets, **FAST)
    score = target_scorer(two_layer, targets)
    expected = sensitivity_n(score, images, maps, (0.1, 0.5), 4)
    assert result.targets == targets
    for f, s in expected.items():
        np.testing.assert_array_equal(result.sensitivity[f].per_image, s.per_image)
    np.testing.assert_array_equal(result.deletion.auc, deletion_auc(score, images, maps, 0.25).auc)
    np.testing.assert_array_equal(result.insertion.auc, insertion_auc(score, images, maps, 0.25).auc)
    assert result.pointing is None and result.energy is None  # no region without masks
    summary = result.summary()
    assert {"sensitivity_n@0.1", "sensitivity_n@0.5", "deletion_auc", "insertion_auc"} <= set(summary)


def test_units_and_a_given_score_function(two_layer, images):
    maps, targets = _maps(len(images)), [k % 2 for k in range(len(images))]
    calls = []

    def score_fn(x, index):
        calls.append(len(x))
        return target_scorer(two_layer, targets)(x, index)

    units = {None: (0.1, 0.5), 3: (0.2,)}
    result = evaluate(two_layer, images, maps, targets, units=units, n_subsets=4, metrics=("sensitivity",),
                      score_fn=score_fn, channel_axis=1)  # fmt: skip
    assert calls and result.targets == targets
    assert list(result.sensitivity_units) == [None, 3] and result.sensitivity is result.sensitivity_units[None]
    for unit, fractions in units.items():
        expected = sensitivity_n(target_scorer(two_layer, targets), images, maps, fractions, 4, patch=unit)
        for f, s in expected.items():
            np.testing.assert_array_equal(result.sensitivity_units[unit][f].per_image, s.per_image)
    assert set(result.summary()) == {"sensitivity_n[px]@0.1", "sensitivity_n[px]@0.5", "sensitivity_n[3x3]@0.2"}


def test_masks_give_pointing_and_energy(two_layer, images):
    maps = _maps(len(images))
    masks = np.zeros(maps.shape, dtype=bool)
    masks[:, 2:6, 3:9] = True
    result = evaluate(two_layer, images, maps, 0, masks, metrics=("pointing", "energy"))
    assert result.sensitivity is None and result.deletion is None
    np.testing.assert_array_equal(result.energy, energy_in_mask(maps, masks))
    assert result.pointing.accuracy == pointing_game(maps, masks).accuracy
    assert {"pointing_accuracy", "energy_in_region"} <= set(result.summary())


def test_a_box_target_scores_the_box_and_is_the_region(dense, images):
    box = BoxTarget(1, (2, 3, 6, 9))
    maps = _maps(len(images))
    result = evaluate(dense, images, maps, box, **FAST)
    with torch.no_grad():
        out = dense(images)
    expected = out[:, 1, 2:6, 3:9].sum((1, 2))
    torch.testing.assert_close(torch.from_numpy(result.deletion.score_original).float(), expected)
    region = np.zeros((len(images), 12, 12), dtype=bool)
    region[:, 2:6, 3:9] = True
    np.testing.assert_array_equal(result.regions, region)
    np.testing.assert_array_equal(result.energy, energy_in_mask(maps, region))


def test_selector_scorer_contracts_each_rows_image_selector(dense, images):
    selectors = torch.zeros(len(images), 2, 12, 12)
    selectors[::2, 1] = 1.0
    index = torch.arange(len(images)).flip(0)
    with torch.no_grad():
        out = dense(images)
    expected = (out * selectors[index]).sum((1, 2, 3))
    torch.testing.assert_close(selector_scorer(dense, selectors)(images, index), expected)


def test_the_default_target_of_a_map_is_its_predicted_region(dense, images):
    result = evaluate(dense, images, _maps(len(images)), metrics=("energy",))
    assert all(isinstance(t, RegionTarget) for t in result.targets)
    np.testing.assert_array_equal(result.regions, np.stack([t.mask.numpy() for t in result.targets]))


def test_regions_are_resampled_to_input_pixels(dense):
    out = torch.zeros(1, 2, 6, 6)
    (region,) = target_regions([BoxTarget(0, (0, 0, 3, 3))], out, (12, 12))
    assert region[:6, :6].all() and region.sum() == 36
    assert target_regions([0], torch.zeros(1, 2), (12, 12)) is None


def test_an_unknown_metric_is_refused(two_layer, images):
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate(two_layer, images, _maps(len(images)), 0, metrics=("auc",))

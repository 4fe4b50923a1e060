"""benchmarks/negative_evidence.py: the composed data set and the negative-map scores."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import negative_evidence as ne  # noqa: E402

import dmbp_onnx  # noqa: E402
from dmbp_onnx.methods import Attribution  # noqa: E402
from models.demo.shapes import TEST_SEED, make_example  # noqa: E402


def _scenes(n: int = 24) -> list[tuple[int, ne.Scene | str]]:
    return [(i, ne.compose(i)) for i in range(n)]


def test_compose_is_deterministic_and_keeps_the_objects_apart():
    scenes = [(i, s) for i, s in _scenes() if isinstance(s, ne.Scene)]
    assert len(scenes) >= 10
    for i, scene in scenes:
        again = ne.compose(i)
        np.testing.assert_array_equal(scene.image, again.image)
        clean, mask, label = make_example(TEST_SEED, i)
        np.testing.assert_array_equal(scene.clean, clean)
        np.testing.assert_array_equal(scene.target_mask, mask)
        assert scene.label == label != scene.distractor_label
        assert scene.distractor_mask.any()
        assert not (binary_dilation(scene.target_mask, iterations=ne.GAP) & scene.distractor_mask).any()
        outside = ~scene.distractor_mask
        np.testing.assert_array_equal(scene.image[outside], clean[outside])


def test_the_distractor_is_a_translated_demo_object():
    i, scene = next((i, s) for i, s in _scenes() if isinstance(s, ne.Scene))
    source, source_mask, label = make_example(ne.DISTRACTOR_SEED, i)
    assert scene.distractor_label == label
    assert scene.distractor_mask.sum() == source_mask.sum()
    np.testing.assert_array_equal(np.sort(scene.image[scene.distractor_mask], 0), np.sort(source[source_mask], 0))


def test_dropped_candidates_say_why():
    reasons = {s for _, s in _scenes(64) if isinstance(s, str)}
    assert reasons <= {"same_class", "no_room"} and reasons


def test_rule_needs_prediction_and_both_rises():
    logits = np.array([[4.0, 5.0, 5.0], [4.0, 4.1, 5.0], [4.0, 5.0, 4.1], [4.0, 5.0, 5.0], [-2.0, -1.8, -1.8]])
    predicted = np.array([1, 1, 1, 0, 1])
    labels = np.ones(5, dtype=int)
    np.testing.assert_array_equal(ne.kept(predicted, labels, logits), [True, False, False, False, True])


def test_patch_sums():
    maps = np.arange(2 * 16 * 16, dtype=np.float64).reshape(2, 16, 16)
    sums = ne.patch_sums(maps, patch=8)
    assert sums.shape == (2, 2, 2)
    assert sums[1, 0, 1] == maps[1, :8, 8:].sum()


def _data(distractor: np.ndarray) -> ne.Dataset:
    n = len(distractor)
    return ne.Dataset(
        x=torch.zeros(n, 3, 16, 16), labels=np.zeros(n, dtype=int), target_masks=np.zeros_like(distractor),
        distractor_masks=distractor, logits=np.zeros((n, 3)), candidates=np.arange(n), counts={},
    )  # fmt: skip


def test_scores_of_a_perfect_and_of_an_empty_negative_map():
    distractor = np.zeros((2, 16, 16), dtype=bool)
    distractor[:, 2:6, 2:6] = True
    signed = torch.zeros(2, 3, 16, 16)
    signed[:, :, 10:14, 10:14] = 1.0  # positive evidence elsewhere
    signed[0, :, 2:6, 2:6] = -1.0  # image 0: all negative mass on the distractor
    effects = np.zeros((2, 2, 2))
    effects[:, 0, 0] = 1.0  # occluding the distractor's patch raises the logit
    effects[:, 1, 1] = -1.0
    attribution = Attribution.from_signed("t", signed, target=[0, 0], score=torch.zeros(2), explains="output")
    scores = ne.negative_scores(attribution, _data(distractor), effects)
    assert scores["mass_share"].tolist() == [1.0, 0.0]
    assert scores["pointing"].tolist() == [1.0, 0.0]
    assert scores["patch_spearman"][0] > 0.5 and scores["patch_spearman"][1] == 0.0
    assert scores["empty"].tolist() == [0.0, 1.0]
    assert scores["wrong_sign"].tolist() == [0.0, 0.0]
    assert scores["target_share"].tolist() == [0.0, 0.0]


@pytest.fixture(scope="module")
def twin():
    return dmbp_onnx.load(ne.DEMO)


def test_kept_images_satisfy_the_rule(twin):
    data = ne.build_dataset(twin, 3, batch=16)
    assert data.counts["kept"] == 3 == len(data.x)
    with torch.no_grad():
        out = twin(data.x)
    np.testing.assert_array_equal(out.argmax(1).numpy(), data.labels)
    removal, fill = ne.rises(data.logits)
    assert (removal >= ne.MIN_RISE * np.abs(data.logits[:, 0])).all()
    assert (fill >= ne.MIN_RISE * np.abs(data.logits[:, 0])).all()
    assert not (data.target_masks & data.distractor_masks).any()


def test_counts_cover_the_candidates_up_to_the_last_kept_one(twin):
    small, large = ne.build_dataset(twin, 2, batch=64), ne.build_dataset(twin, 4, batch=8)
    np.testing.assert_array_equal(large.candidates[:2], small.candidates)
    counts = small.counts
    assert counts["candidates"] == small.candidates[-1] + 1
    dropped = counts["same_class"] + counts["no_room"] + counts["not_predicted"] + counts["small_rise"]
    assert counts["candidates"] == dropped + counts["kept"]

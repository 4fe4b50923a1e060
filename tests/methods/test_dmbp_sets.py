"""DMBP's two mask sets apart: per-set losses and best iterates, the collapse rule per set, and a
negative set under a rule of its own."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from dmbp_onnx.methods import DMBP
from dmbp_onnx.methods.dmbp.iterates import Best, alive_maps
from dmbp_onnx.methods.dmbp.objectives import PlainStats, loss_per_image, loss_per_set


def _stats(positive: float, negative: float, n: int = 2) -> PlainStats:
    ones = torch.ones(n)
    return PlainStats(f0=ones, scale=ones, total=(positive + negative) * ones,
                      positive_mass=positive * ones, negative_mass=negative * ones)  # fmt: skip


@pytest.mark.parametrize("objective", ["perset", "r1"])
def test_per_set_terms_sum_to_the_loss(objective):
    g = torch.Generator().manual_seed(3)
    a_pos, a_neg = torch.randn(4, 30, generator=g), torch.randn(4, 30, generator=g)
    masks = {"a": torch.rand(2, 4, 5, generator=g), "b": torch.rand(2, 4, 7, generator=g)}
    stats = PlainStats.of(torch.randn(4, 3, 10, generator=g), torch.randn(4, 30, generator=g))
    terms = loss_per_set(objective, a_pos, a_neg, masks, stats, alpha=0.7, lam=0.3, lam_neg=0.1)
    assert terms.shape == (2, 4)
    total = loss_per_image(objective, a_pos, a_neg, masks, stats, 0.7, 0.3, 10.0, 0.1)
    torch.testing.assert_close(terms.sum(0), total)
    # the negative terms do not depend on the positive map, nor the positive terms on the negative one
    other = loss_per_set(objective, a_pos * 2, a_neg, masks, stats, alpha=0.7, lam=0.3, lam_neg=0.1)
    torch.testing.assert_close(other[1], terms[1])
    with pytest.raises(ValueError, match="per-set"):
        loss_per_set("r2", a_pos, a_neg, masks, stats, 1.0, 0.0)


def test_each_set_keeps_its_own_best_iterate():
    best = Best(2)
    w = [torch.full((4, 3), float(step)) for step in range(3)]
    masks = [{"s": torch.full((2, 2, 1), float(step))} for step in range(3)]
    losses = [torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[-1.0, 1.0], [1.0, -1.0]]),
              torch.tensor([[-2.0, -2.0], [2.0, 2.0]])]  # fmt: skip
    alive = torch.ones(2, 2, dtype=torch.bool)
    for step in range(3):
        best.update(step, losses[step], w[step], masks[step], alive)
    # rows of w and masks are (set, image): positive set of both images at step 2; negative set of
    # image 0 stays at step 0, of image 1 at step 1
    assert best.step.tolist() == [[2, 2], [0, 1]]
    assert best.w[:, 0].tolist() == [2.0, 2.0, 0.0, 1.0]
    assert best.masks["s"].flatten().tolist() == [2.0, 2.0, 0.0, 1.0]


def test_a_collapsed_set_is_not_chosen():
    best = Best(1)
    best.update(0, torch.tensor([[0.0], [0.0]]), torch.zeros(2, 1), {}, torch.ones(2, 1, dtype=torch.bool))
    best.update(1, torch.tensor([[-1.0], [-1.0]]), torch.ones(2, 1), {}, torch.tensor([[True], [False]]))
    assert best.step.tolist() == [[1], [0]]


def test_a_set_may_not_empty_a_map_the_plain_mapping_has_evidence_for():
    x = torch.ones(1, 1, 4)
    pixels = lambda a: a.flatten(1)  # noqa: E731
    pos, neg = torch.ones(1, 1, 4), torch.zeros(1, 1, 4)
    w = torch.cat([pos, neg])
    # the plain map has 30 % negative mass: an empty negative map is a collapse of the negative set
    assert alive_maps(w, x, _stats(2.8, 1.2, 1), pixels).tolist() == [[True], [False]]
    # ... but not where the plain map has under 10 % negative mass (there is nothing to lose)
    assert alive_maps(w, x, _stats(3.8, 0.2, 1), pixels).tolist() == [[True], [True]]
    # without a per-pixel reduction the sets are judged together, as one image
    assert alive_maps(w, x, _stats(2.8, 1.2, 1)).tolist() == [[True]]


def test_negative_rule_of_its_own(net, images):
    """At 0 iterations, rule lrp-gamma with negative_rule gradient gives LRP's mapping as W+ and the
    gradient's as W-; learning keeps a negative map where the gradient has negative evidence."""
    _, twin = net
    one = dict(iterations=0, path_steps=1, device="cpu")  # the rules' default paths differ
    method = DMBP(twin, rule="lrp-gamma", negative_rule="gradient", **one)
    mixed = method.attribute(images)
    lrp = DMBP(twin, rule="lrp-gamma", **one).attribute(images)
    gradient = DMBP(twin, rule="gradient", **one).attribute(images)
    torch.testing.assert_close(mixed.extras["w_pos"], lrp.extras["w_pos"])
    torch.testing.assert_close(mixed.extras["w_neg"], gradient.extras["w_neg"])
    assert method.options["negative_rule"] == "gradient"
    assert DMBP(twin, rule="gradient").options["negative_rule"] == "gradient"
    learned = DMBP(twin, iterations=3, rule="lrp-gamma", negative_rule="gradient", device="cpu").attribute(images)
    assert learned.negative.abs().sum() > 0
    assert not learned.extras["magnitudes"]["collapsed"].any()


def test_the_reference_loop_refuses_another_rule(net):
    """The reference loop implements the gradient rule: comparing it with an LRP-rule DMBP is an error."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from dmbp_reference import reference_options

    _, twin = net
    assert reference_options(DMBP(twin, rule="gradient"))["path_steps"] == 2
    for options in ({}, {"rule": "gradient", "negative_rule": "lrp-gamma"}):
        with pytest.raises(ValueError, match="rule='gradient'"):
            reference_options(DMBP(twin, **options))
    with pytest.raises(ValueError, match="per-filter"):
        reference_options(DMBP(twin, rule="gradient", regions=2))


def test_defaults_follow_the_rule(net):
    """The LRP rule: one path point and a 4 x 4 region grid; the gradient rule: the path and per-filter masks."""
    _, twin = net
    assert {k: DMBP(twin).options[k] for k in ("rule", "path_steps", "regions")} == {
        "rule": "lrp-gamma", "path_steps": 1, "regions": 4}
    assert {k: DMBP(twin, rule="gradient").options[k] for k in ("path_steps", "regions")} == {
        "path_steps": 2, "regions": 1}
    assert DMBP(twin, regions=2, path_steps=3).options["regions"] == 2

"""DMBP: the masked-mapping invariants (dmbp-method.md §2), the optimisation and the fast path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import dmbp_onnx
from dmbp_onnx.errors import InputError
from dmbp_onnx.methods import DMBP, BoxTarget
from dmbp_onnx.methods.masked import MaskedMapping
from dmbp_onnx.methods.target import resolve_targets

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from dmbp_reference import reference_dmbp, reference_options  # noqa: E402

ITER = 25


def frozen_linearisation(model: nn.Sequential, x: torch.Tensor, masks: list) -> torch.Tensor:
    """L_m(x) computed independently: biases dropped, ``masks[k]`` (N, C) on the k-th masked layer's
    output, ReLU gates and max-pool choices frozen from the real forward pass at ``x``."""
    h, lin, k = x.detach(), x, 0
    layers = list(model)
    for i, layer in enumerate(layers):
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            h = layer(h)
            if isinstance(layer, nn.Conv2d):
                lin = F.conv2d(lin, layer.weight, None, layer.stride, layer.padding)
            else:
                lin = F.linear(lin, layer.weight)
            hidden = any(isinstance(l, nn.Linear) for l in layers[i + 1 :]) or isinstance(layer, nn.Conv2d)
            if hidden:
                lin = lin * masks[k].reshape(masks[k].shape + (1,) * (lin.dim() - 2))
                k += 1
        elif isinstance(layer, nn.ReLU):
            lin = lin * (h > 0)
            h = torch.relu(h)
        elif isinstance(layer, nn.MaxPool2d):
            h, idx = F.max_pool2d(h, layer.kernel_size, layer.stride, return_indices=True)
            lin = lin.flatten(2).gather(2, idx.flatten(2)).view_as(h)
        elif isinstance(layer, nn.Flatten):
            h, lin = h.flatten(1), lin.flatten(1)
    assert k == len(masks)
    return lin


def mapping_of(twin, x, target=None):
    return MaskedMapping(twin.module, x, lambda out: resolve_targets(out, target)[1])


def test_unit_masks_give_the_plain_gradient(net, images):
    model, twin = net
    mapping = mapping_of(twin, images)
    w = mapping(None)
    ones = {name: torch.ones(3, c) for name, c in mapping.channels.items()}
    assert torch.equal(mapping(ones), w)
    x = images.clone().requires_grad_(True)
    out = twin(x)
    (g_twin,) = torch.autograd.grad(out, x, mapping.grad_outputs)
    assert torch.equal(w, g_twin)
    x = images.clone().requires_grad_(True)
    (g_torch,) = torch.autograd.grad(model(x), x, mapping.grad_outputs)
    torch.testing.assert_close(w, g_torch, rtol=1e-5, atol=1e-6)


def test_masked_mapping_is_the_frozen_linearisation(net, images):
    model, twin = net
    mapping = mapping_of(twin, images)
    g = torch.Generator().manual_seed(3)
    masks = {name: torch.rand(3, c, generator=g) for name, c in mapping.channels.items()}
    wm = mapping(masks)
    x = images.clone().requires_grad_(True)
    lin = frozen_linearisation(model, x, [masks[n] for n in mapping.site_names])
    value = (lin * mapping.grad_outputs).sum(1)
    # Euler: L_m is linear in x, so sum(W_m * x) = L_m(x)
    torch.testing.assert_close((wm * images).flatten(1).sum(1), value.detach(), rtol=1e-4, atol=1e-6)
    (w_independent,) = torch.autograd.grad(value.sum(), x)
    torch.testing.assert_close(wm, w_independent, rtol=1e-4, atol=1e-7)
    assert not torch.allclose(wm, mapping(None))


def test_optimisation_invariants(net, images):
    _, twin = net
    before = twin(images)
    result = DMBP(twin, iterations=ITER, device="cpu").attribute(images)
    after = twin(images)
    assert torch.equal(before, after)
    assert result.target == before.argmax(1).tolist()
    torch.testing.assert_close(result.score, before[range(3), result.target], rtol=1e-5, atol=1e-6)
    history = result.extras["loss_history"]
    assert history.shape == (ITER, 3)
    assert (history[-1] < history[0]).all()
    assert (result.positive.flatten(1).sum(1) > 0).all()
    assert (result.negative.flatten(1).sum(1) < 0).all()
    ex = result.extras
    torch.testing.assert_close(ex["nuisance"], ex["gradient"] - ex["w_pos"] - ex["w_neg"])
    torch.testing.assert_close(result.signed, (ex["w_pos"] + ex["w_neg"]) * images)
    for name, c in ((s.name, s.channels) for s in twin.mask_sites):
        for key in ("masks_pos", "masks_neg"):
            m = ex[key][name]
            # per filter, or per filter and region cell (the LRP rule's default grid): filter-major
            assert m.shape[0] == 3 and m.shape[1] % c == 0 and m.min() >= 0 and m.max() <= 1
    mags = ex["magnitudes"]
    assert set(mags) == {
        "positive_evidence", "negative_share", "nuisance_share", "masks_at_bounds", "collapsed", "iterations",
        "best_iterate",
    }  # fmt: skip
    assert (mags["iterations"] <= ITER).all()
    assert not mags["collapsed"].any()
    assert result.pixel_map().shape == (3, 12, 12)
    for recipe in ("clip", "authors"):
        shown = result.display(recipe)
        assert shown.shape == (3, 12, 12) and shown.min() >= -1 and shown.max() <= 1


def test_fast_path_equals_reference_loop(net, images):
    _, twin = net
    for objective in ("r1", "r2", "threeway"):
        method = DMBP(twin, iterations=ITER, objective=objective, lam=0.01, lr=0.25, device="cpu", rule="gradient")
        fast = method.attribute(images[:2])
        ref = reference_dmbp(twin, images[:2], **reference_options(method))
        ex = fast.extras
        torch.testing.assert_close(ex["loss_history"], ref["loss_history"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ex["w_pos"], ref["w_pos"], rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(ex["w_neg"], ref["w_neg"], rtol=1e-5, atol=1e-7)
        for name in ref["masks_pos"]:
            torch.testing.assert_close(ex["masks_pos"][name], ref["masks_pos"][name], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(ex["masks_neg"][name], ref["masks_neg"][name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("objective", ["perset", "r1"])
def test_path_fast_path_equals_reference_loop(net, images, objective):
    """Masks shared along the path: the fast path's per-point mask gradients summed equal autograd's."""
    _, twin = net
    options = dict(iterations=ITER, objective=objective, lam=0.3, lam_neg=0.1, path_steps=3, lr=0.25)
    fast = DMBP(twin, device="cpu", rule="gradient", **options).attribute(images[:2])
    ref = reference_dmbp(twin, images[:2], **options)
    ex = fast.extras
    torch.testing.assert_close(ex["loss_history"], ref["loss_history"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ex["w_pos"], ref["w_pos"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ex["w_neg"], ref["w_neg"], rtol=1e-5, atol=1e-7)


def test_path_starts_at_integrated_gradients(net, images):
    """At 0 iterations the path variant's mappings are the midpoint-rule IG mapping of x."""
    _, twin = net
    k = 4
    result = DMBP(twin, iterations=0, path_steps=k, device="cpu", rule="gradient").attribute(images)
    target = twin(images).argmax(1)
    total = torch.zeros_like(images)
    for i in range(k):
        point = ((i + 0.5) / k * images).requires_grad_(True)
        (g,) = torch.autograd.grad(twin(point).gather(1, target[:, None]).sum(), point)
        total += g / k
    for key in ("gradient", "w_pos", "w_neg"):
        torch.testing.assert_close(result.extras[key], total, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("iterations", [0, 2])
def test_map_path_takes_the_learned_masks_to_a_finer_path(net, images, iterations):
    """Masks learned on 2 points, maps on 6: at 0 iterations the 6-point midpoint IG mapping; after
    learning, each map is the mean over the 6 points of W_m for the masks returned."""
    _, twin = net
    result = DMBP(twin, iterations=iterations, path_steps=2, map_path_steps=6, device="cpu", rule="gradient").attribute(images)
    target = twin(images).argmax(1).tolist()
    plain, positive, negative = (torch.zeros_like(images) for _ in range(3))
    for i in range(6):
        point = (i + 0.5) / 6 * images
        mapping = mapping_of(twin, point, target)
        plain += mapping(None) / 6
        positive += mapping(result.extras["masks_pos"]) / 6
        negative += mapping(result.extras["masks_neg"]) / 6
    torch.testing.assert_close(result.extras["gradient"], plain, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(result.extras["w_pos"], positive, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(result.extras["w_neg"], negative, rtol=1e-5, atol=1e-7)
    if iterations == 0:
        torch.testing.assert_close(result.extras["w_pos"], plain, rtol=1e-5, atol=1e-7)


def test_early_stop_ends_when_masks_settle(net, images):
    _, twin = net
    long = DMBP(twin, iterations=200, lr=0.25, device="cpu").attribute(images)
    stopped = DMBP(twin, iterations=200, lr=0.25, tol=1e-3, device="cpu").attribute(images)
    steps = stopped.extras["loss_history"].shape[0]
    assert steps < 200
    used = stopped.extras["magnitudes"]["iterations"]
    assert (used <= steps).all() and (long.extras["magnitudes"]["iterations"] <= 200).all()


def test_batch_equals_per_image_and_chunks(net, images):
    _, twin = net
    batch = DMBP(twin, iterations=ITER, device="cpu").attribute(images, target=[0, 1, 2])
    chunked = DMBP(twin, iterations=ITER, device="cpu", batch_size=2).attribute(images, target=[0, 1, 2])
    assert chunked.extras["batch_size"] == 2
    for k in range(3):
        single = DMBP(twin, iterations=ITER, device="cpu").attribute(images[k : k + 1], target=k)
        assert single.target == [k]
        for other in (batch, chunked):
            torch.testing.assert_close(other.positive[k : k + 1], single.positive, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(other.negative[k : k + 1], single.negative, rtol=1e-4, atol=1e-6)


def test_starts_at_the_plain_gradient(net, images):
    _, twin = net
    box = DMBP(twin, iterations=0, path_steps=1, device="cpu").attribute(images)
    assert torch.equal(box.extras["w_pos"], box.extras["gradient"])
    # the negative set is the batch's second half: equal up to the conv kernels' rounding
    torch.testing.assert_close(box.extras["w_neg"], box.extras["gradient"], rtol=1e-5, atol=1e-8)
    three = DMBP(twin, iterations=0, objective="threeway", device="cpu").attribute(images)
    ratio = three.extras["w_pos"].norm() / three.extras["gradient"].norm()
    assert 0.99 < ratio <= 1.0


@pytest.mark.parametrize("objective", ["r2", "threeway"])
def test_other_objectives_lower_their_loss(net, images, objective):
    _, twin = net
    result = DMBP(twin, iterations=ITER, objective=objective, device="cpu").attribute(images[:2])
    history = result.extras["loss_history"]
    assert (history[-1] < history[0]).all()
    assert torch.isfinite(result.signed).all()


def test_deterministic_on_cpu(net, images):
    _, twin = net
    a = DMBP(twin, iterations=10, device="cpu", seed=3).attribute(images[:1])
    b = DMBP(twin, iterations=10, device="cpu", seed=3).attribute(images[:1])
    assert torch.equal(a.signed, b.signed)


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        self.body = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 4))

    def forward(self, x):
        h = self.stem(x)
        return self.head(torch.relu(self.body(h) + h))


def test_fast_path_equals_reference_on_a_residual_net():
    from small_models import export

    import dmbp_onnx

    torch.manual_seed(5)
    model = _Residual().eval()
    with torch.no_grad():
        model.body[1].running_mean.uniform_(-0.5, 0.5)
        model.body[1].running_var.uniform_(0.5, 2.0)
    twin = dmbp_onnx.load(export(model, (3, 12, 12)))
    x = torch.randn(2, 3, 12, 12)
    method = DMBP(twin, iterations=ITER, device="cpu", rule="gradient")  # default objective and weights
    fast = method.attribute(x)
    ref = reference_dmbp(twin, x, **reference_options(method))
    torch.testing.assert_close(fast.extras["loss_history"], ref["loss_history"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.extras["w_pos"], ref["w_pos"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(fast.extras["w_neg"], ref["w_neg"], rtol=1e-5, atol=1e-7)


def test_adjoint_without_op_types_uses_exact_jvps(net, images):
    _, twin = net
    nodes = {n.name: n.op for n in twin.clean_graph.graph.nodes}
    ops = {sub: nodes[name] for sub, name in twin.node_names.items()}
    g = torch.Generator().manual_seed(9)
    selector = lambda out: resolve_targets(out, None)[1]  # noqa: E731
    typed, generic = (MaskedMapping(twin.module, images, selector, o) for o in (ops, None))
    masks = {name: torch.rand(3, c, generator=g) for name, c in typed.channels.items()}
    tangent = torch.randn(images.shape, generator=g)
    results = []
    for mapping in (typed, generic):
        mapping(masks)
        results.append(mapping.mask_gradients(tangent, masks))
    for name in masks:
        torch.testing.assert_close(results[0][name], results[1][name], rtol=1e-5, atol=1e-6)


def _residual_twin():
    from small_models import export

    import dmbp_onnx

    torch.manual_seed(5)
    return dmbp_onnx.load(export(_Residual().eval(), (3, 12, 12)))


@pytest.mark.parametrize("residual", [False, True])
def test_channels_last_passes_equal_the_default_layout(net, images, residual):
    # the residual net has an overlapping 3x3/2 max-pool and nodes without a hand-written transpose
    twin = _residual_twin() if residual else net[1]
    nodes = {n.name: n.op for n in twin.clean_graph.graph.nodes}
    ops = {sub: nodes[name] for sub, name in twin.node_names.items()}
    selector = lambda out: resolve_targets(out, None)[1]  # noqa: E731
    mappings = [MaskedMapping(twin.module, images, selector, ops, channels_last=c) for c in (False, True)]
    g = torch.Generator().manual_seed(11)
    masks = {name: torch.rand(3, c, generator=g) for name, c in mappings[0].channels.items()}
    tangent = torch.randn(images.shape, generator=g)
    results = []
    for mapping in mappings:
        w = mapping(masks)
        assert w.is_contiguous()
        results.append((w, mapping.mask_gradients(tangent, masks)))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-4, atol=1e-6)
    for name in masks:
        torch.testing.assert_close(results[1][1][name], results[0][1][name], rtol=1e-4, atol=1e-5)


def test_typed_mapping_frees_the_activations(net, images):
    _, twin = net
    nodes = {n.name: n.op for n in twin.clean_graph.graph.nodes}
    ops = {sub: nodes[name] for sub, name in twin.node_names.items()}
    mapping = MaskedMapping(twin.module, images, lambda out: resolve_targets(out, None)[1], ops)
    kept = [value for value in mapping.primal.values() if isinstance(value, torch.Tensor)]
    assert all(t.numel() < images[0].numel() for t in kept)  # weights and shapes only, no activation
    w = mapping(None)
    assert torch.equal(mapping(None), w)  # repeated passes leave the recorded state unchanged


@pytest.mark.parametrize("residual", [False, True])
def test_bfloat16_passes_agree_with_fp32(net, images, residual):
    """Reduced-precision linear passes: same gates, maps rank-equal to fp32 (Spearman >= 0.95)."""
    from dmbp_onnx.metrics import spearman

    twin = _residual_twin() if residual else net[1]
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(2)) if residual else images
    options = dict(iterations=ITER, objective="perset", path_steps=2, lam=0.3, lr=0.25, device="cpu")
    full = DMBP(twin, **options).attribute(x)
    low = DMBP(twin, precision="bf16", **options).attribute(x)
    assert low.signed.dtype == torch.float32
    a, b = full.pixel_map(), low.pixel_map()
    for k in range(len(x)):
        assert spearman(a[k].ravel(), b[k].ravel()) >= 0.95
    start = DMBP(twin, iterations=0, precision="bf16", device="cpu").attribute(x)
    torch.testing.assert_close(start.extras["w_pos"], start.extras["gradient"])
    torch.testing.assert_close(start.extras["gradient"], DMBP(twin, iterations=0).attribute(x).extras["gradient"], rtol=0.05, atol=0.02 * float(start.extras["gradient"].abs().max()))


def test_early_stopped_chunks_merge_with_nan_padding(net, images):
    """Chunks that stop at different steps: histories padded with NaN after each chunk's last step."""
    _, twin = net
    result = DMBP(twin, iterations=200, lr=0.25, tol=1e-3, batch_size=1, device="cpu").attribute(images)
    history = result.extras["loss_history"]
    steps = [int(torch.isfinite(history[:, k]).sum()) for k in range(3)]
    assert history.shape == (max(steps), 3) and len(set(steps)) > 1
    assert all(torch.isfinite(history[: s, k]).all() for k, s in enumerate(steps))


def test_positive_only_mode_learns_the_same_positive_masks(net, images):
    """With a per-set objective the positive set's steps do not depend on the negative set."""
    _, twin = net
    both = DMBP(twin, iterations=2, device="cpu").attribute(images)
    alone = DMBP(twin, iterations=2, negative=False, device="cpu").attribute(images)
    same = both.extras["magnitudes"]["best_iterate"] == alone.extras["magnitudes"]["best_iterate"]
    assert same.any()
    torch.testing.assert_close(alone.positive[same], both.positive[same])
    assert not alone.negative.any()
    with pytest.raises(InputError, match="couples the sets"):
        DMBP(twin, objective="r2", negative=False)


def test_fast_path_equals_reference_on_a_map_output_masked_at_the_output():
    """A dense output whose last convolution is itself a mask site: the selector reaches that site
    unchanged, and must stay so over the iterations (it was multiplied in place once)."""
    from small_models import export

    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 2, 3, padding=1)).eval()
    twin = dmbp_onnx.load(export(model, (3, 10, 10)))
    x = torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(1))
    target = BoxTarget(0, (2, 2, 8, 8))
    method = DMBP(twin, iterations=5, lr=0.25, device="cpu", rule="gradient")
    fast = method.attribute(x, target=target)
    ref = reference_dmbp(twin, x, target=target, **reference_options(method))
    torch.testing.assert_close(fast.extras["loss_history"], ref["loss_history"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.extras["w_pos"], ref["w_pos"], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(fast.extras["w_neg"], ref["w_neg"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("options", [{}, {"rule": "gradient"}, {"negative_rule": "gradient"}, {"negative": False}])
def test_first_iteration_reuses_the_unmasked_passes(net, images, monkeypatch, options):
    """Masks start at 1, so the first iteration's W_m is the unmasked mapping already computed for the loss's
    statistics: no backward pass of its own, and the same maps, bit for bit, as when it is recomputed."""

    class Recomputing(DMBP):
        def _step(self, mapping, theta, stats, xd, known=None):
            return super()._step(mapping, theta, stats, xd, None)

    _, twin = net
    settings = dict(iterations=2, path_steps=2, device="cpu", **options)
    expected = Recomputing(twin, **settings).attribute(images)
    calls = []
    original = MaskedMapping.__call__
    monkeypatch.setattr(MaskedMapping, "__call__", lambda self, masks: calls.append(1) or original(self, masks))
    found = DMBP(twin, **settings).attribute(images)
    for which in ("signed", "positive", "negative"):
        assert torch.equal(getattr(found, which), getattr(expected, which))
    own = 2 if "negative_rule" in options else 1  # sets with an unmasked pass of their own
    sets = 1 if options.get("negative") is False else 2
    # unmasked passes (own x K) + the second iteration's and the last masks' passes (2 x sets x K)
    assert len(calls) == own * 2 + 2 * sets * 2


def test_region_masks_at_one_are_the_per_filter_mapping_and_split_the_filter(net, images):
    """Masks per filter and region cell: at 1 the mapping is the unmasked one; a filter's mask that is 0 in
    every cell equals a per-filter mask of 0; the mask gradient summed over a filter's cells is the
    per-filter gradient; and DMBP learns them (more masks, same starting map)."""
    _, twin = net
    nodes = {n.name: n.op for n in twin.clean_graph.graph.nodes}
    ops = {sub: nodes[name] for sub, name in twin.node_names.items()}
    select = lambda out: resolve_targets(out, None)[1]  # noqa: E731
    plain = MaskedMapping(twin.module, images, select, ops)
    grid = MaskedMapping(twin.module, images, select, ops, regions=2)
    spatial = [k for k in grid.channels if grid.channels[k] != plain.channels[k]]
    assert spatial and all(grid.channels[k] == 4 * plain.channels[k] for k in spatial)  # 2x2 cells on each conv
    ones = {k: torch.ones(3, c) for k, c in grid.channels.items()}
    torch.testing.assert_close(grid(ones), plain(None))
    g = torch.Generator().manual_seed(3)
    per_filter = {k: torch.rand(3, c, generator=g).round() for k, c in plain.channels.items()}  # 0/1 per filter
    cells = {k: m.repeat_interleave(grid.channels[k] // plain.channels[k], dim=1) for k, m in per_filter.items()}
    torch.testing.assert_close(grid(cells), plain(per_filter))
    tangent = torch.randn(images.shape, generator=g)
    coarse = plain.mask_gradients(tangent, per_filter)
    fine = grid.mask_gradients(tangent, cells)
    for k in plain.channels:
        summed = fine[k].reshape(3, plain.channels[k], -1).sum(2)
        torch.testing.assert_close(summed, coarse[k], rtol=1e-4, atol=1e-5)
    start = DMBP(twin, iterations=0, regions=2, device="cpu").attribute(images)
    torch.testing.assert_close(start.signed, DMBP(twin, iterations=0, device="cpu").attribute(images).signed)
    learned = DMBP(twin, iterations=3, regions=2, device="cpu").attribute(images)
    assert learned.extras["masks_pos"][spatial[0]].shape == (3, grid.channels[spatial[0]])
    assert not torch.equal(learned.signed, start.signed)

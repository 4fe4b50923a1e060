"""Models that declare a fixed batch: any number of images is explained, in chunks of the declared batch
(padded with copies, dropped afterwards), with the results of the same model with a dynamic batch; DMBP's
two mask sets run as two mappings."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from small_models import conv_net, export
from torch import nn

import dmbp_onnx
from dmbp_onnx.errors import InputError
from dmbp_onnx.methods import DMBP, Gradient, IntegratedGradients, SmoothGrad
from dmbp_onnx.methods.base import pad_batch, static_batch

ITER = 20


class _BakedReshape(nn.Module):
    """Conv-ReLU-MaxPool-Conv-ReLU, reshaped to ``(batch, -1)``, Linear-ReLU-Linear: exported without
    dynamic axes, the reshape target becomes the constant ``[1, -1]``."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU()
        )  # fmt: skip
        self.head = nn.Sequential(nn.Linear(8 * 5 * 5, 12), nn.ReLU(), nn.Linear(12, 4))

    def forward(self, x):
        h = self.features(x)
        return self.head(h.reshape(h.shape[0], -1))


def _export_fixed(model: nn.Module, shape: tuple) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), torch.randn(1, *shape), buffer, dynamo=False, input_names=["x"],
                          output_names=["y"])  # fmt: skip
    return buffer.getvalue()


def _fixed(model, batch: int):
    model.graph.input[0].type.tensor_type.shape.dim[0].ClearField("dim_param")
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = batch
    return model


def _assert_same(fixed, dynamic) -> None:
    close = dict(rtol=1e-5, atol=1e-6)
    assert fixed.target == dynamic.target
    torch.testing.assert_close(fixed.score, dynamic.score, **close)
    ex, ey = fixed.extras, dynamic.extras
    torch.testing.assert_close(ex["loss_history"], ey["loss_history"], **close)
    for key in ("w_pos", "w_neg", "gradient"):
        torch.testing.assert_close(ex[key], ey[key], **close)
    for key in ("masks_pos", "masks_neg"):
        assert ex[key].keys() == ey[key].keys()
        for name in ex[key]:
            torch.testing.assert_close(ex[key][name], ey[key][name], **close)
    torch.testing.assert_close(fixed.positive, dynamic.positive, **close)
    torch.testing.assert_close(fixed.negative, dynamic.negative, **close)


@pytest.fixture(scope="module")
def twins():
    """``(fixed batch 1, dynamic batch)`` twins of one :class:`_BakedReshape`."""
    torch.manual_seed(4)
    model = _BakedReshape().eval()
    return dmbp_onnx.load(_export_fixed(model, (3, 10, 10))), dmbp_onnx.load(export(model, (3, 10, 10)))


def test_the_fixed_export_cannot_run_another_batch(twins):
    fixed, dynamic = twins
    assert static_batch(fixed) == 1 and static_batch(dynamic) is None
    assert dynamic(torch.randn(2, 3, 10, 10)).shape == (2, 4)
    with pytest.raises(RuntimeError):
        fixed(torch.randn(2, 3, 10, 10))


@pytest.mark.parametrize("objective", ["r1", "threeway"])
def test_fixed_batch_one_equals_the_batched_path(twins, objective):
    fixed, dynamic = twins
    x = torch.randn(1, 3, 10, 10, generator=torch.Generator().manual_seed(6))
    options = dict(iterations=ITER, objective=objective, device="cpu")
    for target in (None, 2):
        result = DMBP(fixed, **options).attribute(x, target=target)
        _assert_same(result, DMBP(dynamic, **options).attribute(x, target=target))
        assert result.extras["batch_size"] == 1 and result.extras["loss_history"].shape == (ITER, 1)


def test_fixed_batch_two_equals_the_batched_path():
    # conv_net bakes no batch into constants, so its fixed-batch copy shows the chunking by the batch
    dynamic, fixed = dmbp_onnx.load(conv_net()), dmbp_onnx.load(_fixed(conv_net(), 2))
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    result = DMBP(fixed, iterations=ITER, device="cpu", batch_size=1).attribute(x, target=[1, 3])
    assert result.extras["batch_size"] == 2  # the declared batch, whatever batch_size says
    _assert_same(result, DMBP(dynamic, iterations=ITER, device="cpu").attribute(x, target=[1, 3]))


def _images(n: int, seed: int, shape=(3, 10, 10)) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


def test_pad_batch_appends_copies_of_the_last_image_up_to_a_multiple():
    x = _images(3, 0)
    padded = pad_batch(x, 2)
    assert padded.shape[0] == 4 and torch.equal(padded[:3], x) and torch.equal(padded[3], x[2])
    assert pad_batch(x, 3) is x and pad_batch(x, 1) is x


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("method", [Gradient, IntegratedGradients, SmoothGrad])
def test_baselines_on_a_batch_one_export_explain_any_number_of_images(twins, method, n):
    fixed, dynamic = twins
    x = _images(n, 10 + n)
    got = method(fixed, device="cpu").attribute(x, target=[k % 4 for k in range(n)])
    want = [method(dynamic, device="cpu").attribute(x[k : k + 1], target=k % 4) for k in range(n)]
    assert got.target == [k % 4 for k in range(n)] and got.signed.shape == x.shape
    torch.testing.assert_close(got.signed, torch.cat([w.signed for w in want]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.score, torch.cat([w.score for w in want]), rtol=1e-5, atol=1e-6)


def test_dmbp_on_a_batch_one_export_explains_three_images_as_three_chunks(twins):
    fixed, dynamic = twins
    x = _images(3, 21)
    options = dict(iterations=4, device="cpu")
    got = DMBP(fixed, **options).attribute(x)
    assert got.extras["loss_history"].shape == (4, 3) and got.extras["magnitudes"]["iterations"].shape == (3,)
    for k in range(3):
        one = DMBP(dynamic, **options).attribute(x[k : k + 1])
        assert got.target[k] == one.target[0]
        torch.testing.assert_close(got.positive[k : k + 1], one.positive, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.extras["loss_history"][:, k : k + 1], one.extras["loss_history"])
        for name, mask in one.extras["masks_pos"].items():
            torch.testing.assert_close(got.extras["masks_pos"][name][k : k + 1], mask, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_a_batch_two_model_pads_the_last_chunk_and_drops_the_copy(n):
    dynamic, fixed = dmbp_onnx.load(conv_net()), dmbp_onnx.load(_fixed(conv_net(), 2))
    x = _images(n, 30 + n, (3, 8, 8))
    targets = [(k + 1) % 4 for k in range(n)]
    got = DMBP(fixed, iterations=4, device="cpu").attribute(x, target=targets)
    assert got.target == targets and got.positive.shape == x.shape and got.extras["batch_size"] == 2
    for start in range(0, n, 2):  # the same images as chunks of the dynamic model
        chunk = DMBP(dynamic, iterations=4, device="cpu").attribute(x[start : start + 2], target=targets[start : start + 2])
        torch.testing.assert_close(got.positive[start : start + 2], chunk.positive, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.negative[start : start + 2], chunk.negative, rtol=1e-5, atol=1e-6)


def test_a_wrong_image_shape_is_a_typed_error_naming_both_shapes(twins):
    fixed, _ = twins
    for method in (Gradient(fixed, device="cpu"), DMBP(fixed, iterations=2, device="cpu")):
        with pytest.raises(InputError, match=r"input 'x' has shape \(2, 3, 9, 9\); the model declares \(1, 3, 10, 10\)"):
            method.attribute(torch.randn(2, 3, 9, 9))

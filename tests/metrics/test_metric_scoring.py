"""target_scorer picks each row's target through the image index."""

import numpy as np
import pytest
import torch
from onnx import helper

from dmbp_onnx.errors import InputError
from dmbp_onnx.metrics import target_scorer
from oracle import check_twin, float_input, init, make_model


def test_rows_use_their_images_target(two_layer):
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((3, 3, 12, 12)).astype(np.float32))
    logits = two_layer(x).reshape(3, 2)
    score = target_scorer(two_layer, [1, 0, 1])
    index = torch.tensor([2, 0, 1])
    expected = torch.stack([logits[0, 1], logits[1, 1], logits[2, 0]])  # targets[index[row]]
    torch.testing.assert_close(score(x, index), expected)
    with pytest.raises(InputError, match="targets must lie"):
        target_scorer(two_layer, [2, 0, 0])(x, torch.arange(3))
    with pytest.raises(InputError, match="has no target"):
        target_scorer(two_layer, [0])(x, torch.arange(3))


def test_a_spatial_output_is_refused():
    rng = np.random.default_rng(0)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c")
    model = make_model(
        [node], [float_input("x", ["N", 1, 5, 5])], [float_input("y", ["N", 2, 3, 3])],
        [init("w", rng.standard_normal((2, 1, 3, 3)).astype(np.float32))],
    )
    twin = check_twin(model)
    with pytest.raises(InputError, match="one score vector per image"):
        target_scorer(twin, [0])(torch.zeros(1, 1, 5, 5), torch.zeros(1, dtype=torch.long))

"""BatchNormalization in inference form."""

import numpy as np
import pytest
from onnx import helper
from torch import nn

from dmbp_onnx.errors import UnsupportedOpError
from oracle import check_twin
from ops_testlib import cases, check, float_input, init, make_model, randn, single


def _stats(c, seed=8):
    rng = np.random.default_rng(seed)
    return [
        init("scale", rng.standard_normal(c).astype(np.float32)),
        init("bias", rng.standard_normal(c).astype(np.float32)),
        init("mean", rng.standard_normal(c).astype(np.float32)),
        init("var", rng.uniform(0.5, 2.0, c).astype(np.float32)),
    ]


@pytest.mark.parametrize("revision,case", cases("BatchNormalization", ["2d", "1d", "fc", "3d", "epsilon"]))
def test_batchnorm(revision, case):
    shape = {"2d": (2, 3, 4, 5), "1d": (2, 3, 7), "fc": (4, 3), "3d": (2, 3, 2, 3, 4), "epsilon": (2, 3, 4, 5)}[case]
    attrs = {"epsilon": 1e-2} if case == "epsilon" else {}
    twin = check(single("BatchNormalization", revision, [("x", shape)], inits=_stats(3), **attrs))
    expected = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}[len(shape)]
    module = twin.module.get_submodule("batchnormalization_node")
    assert isinstance(module, expected) and not module.training


@pytest.mark.parametrize("revision,case", cases("BatchNormalization", ["runtime_stats"], since=9))
def test_batchnorm_runtime_scale(revision, case):
    inits = _stats(3)
    model = single("BatchNormalization", revision, [("x", (2, 3, 4)), ("scale", (3,))], inits=inits[1:])
    check(model, [randn(2, 3, 4), randn(3, seed=1)])


def test_batchnorm_training_refused():
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], name="bn",
                            training_mode=1)
    model = make_model([node], [float_input("x", (2, 3, 4))], [float_input("y", (2, 3, 4))], _stats(3), opset=15)
    with pytest.raises(UnsupportedOpError, match=r"BatchNormalization \(opset 15\) at node 'bn'.*training_mode"):
        check_twin(model)

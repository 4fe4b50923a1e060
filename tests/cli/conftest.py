"""Model files and a subprocess runner for the CLI tests."""

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import helper

from oracle import float_input, init, make_model

# ``python -m dmbp_onnx.cli`` needs a ``__main__`` module; calling ``main`` works either way.
ENTRY = "import sys; from dmbp_onnx.cli import main; sys.exit(main())"


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def run_cli():
    """Run ``dmbp-onnx ARGS`` in a fresh interpreter; returns the completed process."""
    return _run_cli


def conv_net(sigmoid: bool = False) -> onnx.ModelProto:
    """conv -> relu -> GAP -> flatten -> fc (4 classes), optionally followed by a Sigmoid."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1),
    ]
    if sigmoid:
        nodes[-1].output[0] = "logits"
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["y"], name="squash"))
    inits = [
        init("w", 0.3 * rng.standard_normal((6, 3, 3, 3)).astype(np.float32)),
        init("b", 0.1 * rng.standard_normal(6).astype(np.float32)),
        init("wf", rng.standard_normal((4, 6)).astype(np.float32)),
    ]
    return make_model(nodes, [float_input("x", ["N", 3, 8, 8])], [float_input("y", ["N", 4])], inits)


@pytest.fixture
def model_path(tmp_path):
    """A small piecewise-linear classifier saved as ``net.onnx``."""
    path = tmp_path / "net.onnx"
    onnx.save(conv_net(), str(path))
    return path


@pytest.fixture
def sigmoid_model_path(tmp_path):
    """The same classifier ending in a Sigmoid (not eligible for DMBP)."""
    path = tmp_path / "squashed.onnx"
    onnx.save(conv_net(sigmoid=True), str(path))
    return path

"""Small models, the foreign fixtures and the hostile corpus for the audit tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from oracle import float_input, init, make_model

sys.path.insert(0, str(Path(__file__).parents[1] / "hostile"))

_FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"


def conv_net(sigmoid: bool = False) -> onnx.ModelProto:
    """conv -> relu -> GAP -> flatten -> fc (4 classes), optionally squashed by a Sigmoid."""
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
def net_path(tmp_path):
    """A small piecewise-linear classifier saved as ``net.onnx``."""
    path = tmp_path / "net.onnx"
    onnx.save(conv_net(), str(path))
    return path


@pytest.fixture
def sigmoid_path(tmp_path):
    """The same classifier ending in a Sigmoid (not eligible for DMBP)."""
    path = tmp_path / "squashed.onnx"
    onnx.save(conv_net(sigmoid=True), str(path))
    return path


@pytest.fixture
def torch_fixture(tmp_path):
    """A copy of the foreign torch CNN fixture (model + .npz) alone in a folder."""
    folder = tmp_path / "models"
    folder.mkdir()
    for suffix in (".onnx", ".npz"):
        shutil.copy(_FOREIGN / f"torch_legacy_cnn{suffix}", folder / f"torch_legacy_cnn{suffix}")
    return folder / "torch_legacy_cnn.onnx"


@pytest.fixture(autouse=True)
def _one_thread_workers(monkeypatch):
    """Audit workers share 2 cores with everyone else's tests."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture
def run_cli():
    """Run ``python -m dmbp_onnx.cli ARGS`` in a fresh interpreter."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dmbp_onnx.cli", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    return run

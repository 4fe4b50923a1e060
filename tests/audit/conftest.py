"""Small models, the foreign fixtures and the hostile corpus for the audit tests."""

import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from small_models import conv_net

sys.path.insert(0, str(Path(__file__).parents[1] / "hostile"))

_FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"


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

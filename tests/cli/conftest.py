"""Model files and a subprocess runner for the CLI tests."""

import subprocess
import sys

import onnx
import pytest

from small_models import conv_net

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

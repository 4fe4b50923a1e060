"""Twins of models made by other frameworks' exporters (tests/fixtures/foreign/).

Each ``<name>.onnx`` was written by a recipe in converters/ together with
``<name>.npz``: ``input`` and the source framework's own ``output`` (plus, for
multi-output graphs, ``outputs``: the array names in graph-output order). The
twin must match onnxruntime and the source framework. A model that uses
ai.onnx.ml operators may instead be refused, but only by an error that names
one of those operators.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import dmbp_onnx
from dmbp_onnx.errors import UnsupportedModelError
from oracle import check_twin

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "foreign"
MODELS = sorted(FIXTURES.glob("*.onnx"))
RTOL, ATOL = 1e-4, 1e-5


def _expected(npz: np.lib.npyio.NpzFile) -> list[np.ndarray]:
    """The source framework's outputs in the ONNX graph's output order."""
    names = [str(n) for n in npz["outputs"]] if "outputs" in npz.files else ["output"]
    return [npz[name] for name in names]


def _ml_ops(model: onnx.ModelProto) -> set[str]:
    """Op types of the nodes outside the default ai.onnx domain."""
    return {n.op_type for n in model.graph.node if n.domain not in ("", "ai.onnx")}


def test_fixtures_are_committed() -> None:
    assert len(MODELS) >= 4, f"expected the committed foreign fixtures in {FIXTURES}"
    for path in MODELS:
        assert path.with_suffix(".npz").is_file(), f"{path.name} has no .npz beside it"


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_twin_matches_onnxruntime_and_source(path: Path) -> None:
    model = onnx.load_model(path)
    with np.load(path.with_suffix(".npz")) as npz:
        x, expected = npz["input"], _expected(npz)
    ml_ops = _ml_ops(model)
    if ml_ops:
        try:
            dmbp_onnx.load(model)
        except UnsupportedModelError as err:
            assert any(op in str(err) for op in ml_ops), f"refusal names none of {sorted(ml_ops)}: {err}"
            return
    check_twin(model, inputs=[x], expected=expected, rtol=RTOL, atol=ATOL)

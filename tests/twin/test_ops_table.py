"""docs/ops.md is current, and the coverage tables it is built from are consistent."""

import importlib.util
import sys
from functools import cache
from pathlib import Path

from dmbp_onnx.twin.coverage import REFUSAL_REASONS, REFUSED_BY_DESIGN, ai_onnx_ops, coverage
from dmbp_onnx.twin.registry import registered_ops

ROOT = Path(__file__).resolve().parents[2]


@cache
def _ops_table():
    """``benchmarks/ops_table.py`` as a module (registered, so its dataclasses resolve)."""
    spec = importlib.util.spec_from_file_location("ops_table", ROOT / "benchmarks" / "ops_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_docs_ops_md_is_current():
    table = _ops_table()
    assert table.DOC.read_text() == table.render(), "docs/ops.md is stale: run python benchmarks/ops_table.py"


def test_every_supported_spelling_names_a_test_that_exists():
    for spelling in _ops_table().SPELLINGS:
        if spelling.revision not in registered_ops().get(spelling.op, []):
            continue
        path, function = spelling.test.split("::")
        assert f"def {function}(" in (ROOT / path).read_text(), spelling


def test_refusal_table_names_real_unregistered_ops_once():
    known = ai_onnx_ops()
    listed = [op for ops in REFUSAL_REASONS.values() for op in ops]
    assert len(listed) == len(set(listed)) == len(REFUSED_BY_DESIGN)
    assert set(listed) <= set(known), sorted(set(listed) - set(known))
    assert not set(listed) & set(registered_ops()), sorted(set(listed) & set(registered_ops()))


def test_every_registered_op_is_supported_at_its_registered_revisions():
    rows = {r.op: r for r in coverage()}
    for op, revisions in registered_ops().items():
        assert rows[op].status == "supported" and list(rows[op].revisions) == revisions


def test_onnx2torch_list_names_real_ops():
    assert _ops_table().onnx2torch_ops() <= set(ai_onnx_ops())

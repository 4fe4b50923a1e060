"""Helpers for the per-op tests: revisions, opsets, one-node models, the xfail table."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import dmbp_onnx.twin.build  # noqa: F401  (registers the converters)
from dmbp_onnx.twin.registry import supported_revisions
from oracle import check_twin, float_input, init, make_model
from xfail_table import XFAIL


def opset_for(op: str, revision: int) -> int:
    """The opset a test model imports to exercise ``op`` at schema ``revision``.

    Revision ``revision`` itself, raised to 7 (onnxruntime's floor) when that still
    resolves to the same revision.
    """
    opset = revision
    if revision < 7 and onnx.defs.get_schema(op, 7).since_version == revision:
        opset = 7
    assert onnx.defs.get_schema(op, opset).since_version == revision
    return opset


def cases(op: str, names: Iterable[str], since: int = 1, until: int = 99) -> list:
    """``pytest.param((revision, case))`` for every registered revision of ``op`` in range.

    Cases listed in :data:`xfail_table.XFAIL` as ``(op, revision, case)`` get a strict xfail.
    """
    out = []
    for revision in supported_revisions(op):
        if not since <= revision <= until:
            continue
        for name in names:
            reason = XFAIL.get((op, revision, name))
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            out.append(pytest.param(revision, name, id=f"{op}{revision}-{name}", marks=marks))
    return out


def rng(seed: int = 0) -> np.random.Generator:
    """A seeded generator."""
    return np.random.default_rng(seed)


def randn(*shape: int, seed: int = 0) -> np.ndarray:
    """Seeded standard-normal float32 values."""
    return rng(seed).standard_normal(shape).astype(np.float32)


def single(
    op: str,
    revision: int,
    inputs: Sequence[tuple[str, Sequence]],
    out_shape: Sequence | None = None,
    inits: Sequence[onnx.TensorProto] = (),
    input_names: Sequence[str] | None = None,
    n_outputs: int = 1,
    **attrs,
) -> onnx.ModelProto:
    """A model with one ``op`` node: float graph inputs ``inputs`` plus ``inits``.

    ``input_names`` is the node's input list (default: graph inputs then initializers).
    """
    names = list(input_names) if input_names is not None else [n for n, _ in inputs] + [t.name for t in inits]
    outs = ["y"] + [f"y{k}" for k in range(1, n_outputs)]
    node = helper.make_node(op, names, outs, name=f"{op.lower()}_node", **attrs)
    graph_inputs = [float_input(n, s) for n, s in inputs]
    graph_outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)]
    return make_model([node], graph_inputs, graph_outputs, inits, opset=opset_for(op, revision))


def any_float(name: str) -> onnx.ValueInfoProto:
    """A float32 output declaration without a shape."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def check(model: onnx.ModelProto, inputs: Sequence[np.ndarray] | None = None, **kw):
    """``oracle.check_twin`` (re-exported so every test goes through the oracle)."""
    return check_twin(model, inputs, **kw)


__all__ = ["any_float", "cases", "check", "float_input", "init", "make_model", "opset_for", "randn", "single"]

"""The twin on ONNX's own node conformance cases (every op the twin registers).

A case passes when the twin reproduces the case's expected outputs (rtol 1e-3,
atol 1e-7, the ONNX backend-test tolerances). Every case that does not is listed
in :mod:`expected_failures` with its reason: a ``refused`` entry must be refused
with a typed error, a ``fail`` entry is an xfail until fixed (strict: a fixed
case must leave the table).
"""

from __future__ import annotations

import logging

import pytest

from conformance.expected_failures import EXPECTED
from conformance.node_cases import load_cases, run_case

CASES = {case.name: case for case in load_cases()}


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def test_cases_cover_every_conv_relu_pool_op():
    ops = {case.op for case in CASES.values()}
    assert {"Conv", "ConvTranspose", "Relu", "MaxPool", "AveragePool", "Resize", "Pad", "Gemm"} <= ops


def test_table_lists_only_known_cases():
    assert set(EXPECTED) <= set(CASES), sorted(set(EXPECTED) - set(CASES))


@pytest.mark.parametrize("name", sorted(CASES))
def test_node_case(name):
    outcome = run_case(CASES[name])
    expected_status, reason = EXPECTED.get(name, ("pass", ""))
    if expected_status == "fail":
        if outcome.status == "pass":
            pytest.fail(f"[XPASS(strict)] {name} now passes: remove it from expected_failures ({reason})")
        assert outcome.status == "fail", f"expected a failure ({reason}), got {outcome}"
        pytest.xfail(f"{reason}: {outcome.detail}")
    assert outcome.status == expected_status, f"{outcome.status} in mode {outcome.mode}: {outcome.detail}"
    if expected_status == "refused":
        assert reason.split(": ", 1)[-1] in outcome.detail

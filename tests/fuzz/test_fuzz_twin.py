"""Property test: random piecewise-linear torch models, exported by both torch
exporters, have twins equal to onnxruntime and to torch.

Fixed seed (``derandomize=True``) so CI is reproducible; the long randomized run
is ``benchmarks/fuzz_nightly.py``. The dynamo exporter takes ~1-3 s per model,
so it gets a few examples only. Examples that hit a failure already pinned in
``test_regressions.py`` are skipped (``harness.known_issue``).
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fuzz.architectures import architectures
from fuzz.export import LEGACY_OPSETS
from fuzz.harness import check_example, known_issue



def fuzz(examples: int) -> settings:
    """Fixed-seed settings with ``examples`` examples and no per-example deadline."""
    return settings(
        max_examples=examples, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@fuzz(30)
@given(arch=architectures(), opset=st.sampled_from(LEGACY_OPSETS))
def test_legacy_export(arch, opset):
    assume(known_issue(arch, "legacy") is None)
    check_example(arch, "legacy", opset)


@fuzz(3)
@given(arch=architectures())
def test_dynamo_export(arch):
    assume(known_issue(arch, "dynamo") is None)
    check_example(arch, "dynamo", None)

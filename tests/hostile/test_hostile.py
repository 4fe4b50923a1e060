"""Every hostile file fails fast with its typed error, a message naming the problem,
without reading anything outside the model's folder and without allocating for
declared sizes."""

import builtins
import io
import os
import re
import time
import tracemalloc
from pathlib import Path

import pytest

from dmbp_onnx.errors import ExternalDataError, UnsupportedOpError
from dmbp_onnx.graph.load import load_model
from make_corpus import CASES, SECRET, build_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def opened(monkeypatch):
    """Record every path opened through builtins.open, io.open or os.open."""
    paths = []

    def spy(real):
        def wrapper(file, *args, **kwargs):
            paths.append(str(file))
            return real(file, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "open", spy(builtins.open))
    monkeypatch.setattr(io, "open", spy(io.open))
    monkeypatch.setattr(os, "open", spy(os.open))
    return paths


def test_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_file_is_refused(case, corpus, opened):
    source, kwargs = corpus[case.name]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(case.error) as info:
            load_model(source, **kwargs)
    finally:
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    message = str(info.value)
    assert re.search(case.match, message), f"{case.name}: message {message!r} does not match {case.match!r}"
    assert elapsed < 2.0, f"{case.name} took {elapsed:.2f} s"
    assert peak < 64 * 2**20, f"{case.name} allocated {peak / 2**20:.0f} MiB"
    assert not [p for p in opened if Path(p).name == SECRET], f"{case.name} opened the secret file"


def test_lexical_escape_never_even_stats_the_target(corpus, opened, monkeypatch):
    stat_calls = []
    real_stat = os.stat

    def spy_stat(path, *args, **kwargs):
        stat_calls.append(str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", spy_stat)
    for name in ("external_dotdot", "external_absolute"):
        with pytest.raises(ExternalDataError):
            load_model(corpus[name][0])
    assert not [p for p in opened + stat_calls if Path(p).name in (SECRET, "passwd")]


def test_unsupported_op_error_names_node_and_opset(corpus):
    with pytest.raises(UnsupportedOpError) as info:
        load_model(corpus["control_flow_loop"][0])
    assert (info.value.op, info.value.node, info.value.opset) == ("Loop", "loop", 17)

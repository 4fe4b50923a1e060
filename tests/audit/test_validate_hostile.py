"""``dmbp-onnx validate`` on every file of the hostile corpus: exit 2, one line on stderr, no traceback."""

import re
from pathlib import Path

import pytest

from dmbp_onnx.cli import main
from make_corpus import CASES, build_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("hostile"))


def _as_cli(case, corpus):
    """The file the CLI gets for ``case``, or None when only the Python API can express it."""
    source, kwargs = corpus[case.name]
    return None if kwargs or not isinstance(source, Path) else source


def test_every_cli_case_is_covered(corpus):
    skipped = [case.name for case in CASES if _as_cli(case, corpus) is None]
    assert skipped == ["external_from_bytes", "over_size_limit"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_validate_refuses_in_one_line(case, corpus, capsys):
    source = _as_cli(case, corpus)
    if source is None:
        pytest.skip("bytes source or load option: covered by tests/hostile")
    assert main(["validate", str(source)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("dmbp-onnx: error: ")
    assert re.search(case.match, err), err


@pytest.mark.parametrize("name", ["truncated", "control_flow_loop"])
def test_validate_refuses_in_a_real_process(name, corpus, run_cli):
    done = run_cli("validate", str(corpus[name][0]), timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert re.search(next(c.match for c in CASES if c.name == name), done.stderr)

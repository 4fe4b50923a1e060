"""``dmbp-onnx validate`` on every file of the hostile corpus: exit 2, one line on stderr, no traceback."""

import re
from pathlib import Path

import pytest

from dmbp_onnx.cli import main
from make_corpus import CASES, build_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("hostile"))


# Only the Python API can express these: a bytes source, and a load option (max_bytes).
API_ONLY = ("external_from_bytes", "over_size_limit")
CLI_CASES = [case for case in CASES if case.name not in API_ONLY]


def test_every_other_case_is_a_file(corpus):
    api_only = [name for name, (source, kwargs) in corpus.items() if kwargs or not isinstance(source, Path)]
    assert api_only == list(API_ONLY)


@pytest.mark.parametrize("case", CLI_CASES, ids=[case.name for case in CLI_CASES])
def test_validate_refuses_in_one_line(case, corpus, capsys):
    assert main(["validate", str(corpus[case.name][0])]) == 2
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

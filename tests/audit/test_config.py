"""audit.toml: read, validated, overridden by flags; usage errors exit 2 before any model runs."""

import re

import pytest

from dmbp_onnx.audit.config import AuditConfig, load_config
from dmbp_onnx.cli import main
from dmbp_onnx.errors import InputError


def test_defaults_are_documented_values():
    config = AuditConfig()
    assert (config.rtol, config.atol, config.samples, config.explain) == (1e-4, 1e-5, 4, True)
    assert (config.max_model_mb, config.time_budget_s, config.require_eligible) == (512.0, 120.0, True)
    assert config.max_bytes == 512 * 2**20


def test_config_file_is_read_and_flags_override_it(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_text("rtol = 1e-3\nsamples = 2\nexplain = false\nrequire_eligible = false\ntime_budget_s = 30\n")
    config = load_config(path)
    assert (config.rtol, config.samples, config.explain, config.require_eligible) == (1e-3, 2, False, False)
    assert config.time_budget_s == 30 and config.atol == 1e-5
    assert config.replace(samples=7, rtol=None).samples == 7
    assert config.replace(samples=7, rtol=None).rtol == 1e-3


@pytest.mark.parametrize(
    "text, match",
    [
        ("rtoll = 1e-3\n", "unknown setting.*rtoll"),
        ("samples = 'many'\n", "'samples' must be a non-negative integer"),
        ("samples = true\n", "'samples' must be a non-negative integer"),
        ("explain = 1\n", "'explain' must be a boolean"),
        ("time_budget_s = 0\n", "'time_budget_s' must be a positive number"),
        ("rtol = -1.0\n", "'rtol' must be a non-negative number"),
        ("rtol = nan\n", "'rtol' must be a non-negative number"),
        ("rtol = [\n", "not valid TOML"),
    ],
)
def test_bad_config_is_refused(tmp_path, text, match):
    path = tmp_path / "audit.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=match):
        load_config(path)


def test_missing_config_is_refused(tmp_path):
    with pytest.raises(InputError, match="cannot read audit config"):
        load_config(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    "args, match",
    [
        (["--config", "{tmp}/absent.toml", "{model}"], "cannot read audit config"),
        (["{tmp}/empty"], "no .onnx models found"),
        (["{tmp}/nowhere.onnx"], "no such file or folder"),
        (["--samples", "-1", "{model}"], "'samples' must be a non-negative integer"),
        (["--time-budget", "0", "{model}"], "'time_budget_s' must be a positive number"),
        (["--json", "{tmp}/no/such/dir/r.json", "{model}"], "cannot write the report"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, net_path, capsys, args, match):
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path, model=net_path) for a in args]
    assert main(["audit", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("dmbp-onnx: error: ")
    assert re.search(match, err), err

"""Whole audits: models run in a worker process with a time budget; reports and exit codes."""

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import dmbp_onnx.audit.runner as runner_module
from dmbp_onnx.audit.config import AuditConfig
from dmbp_onnx.audit.runner import Runner
from dmbp_onnx.cli import main
from make_corpus import CASES, build_corpus

FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"


def _statuses(model):
    return {c["name"]: c["status"] for c in model["checks"]}


def test_foreign_fixtures(tmp_path, capsys):
    json_path, junit_path = tmp_path / "audit.json", tmp_path / "audit.xml"
    args = ["--samples", "1", "--no-explain", "--json", str(json_path), "--junit", str(junit_path)]
    code = main(["audit", str(FOREIGN), *args])  # the smoke test on each fixture: test_checks.py
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    report = json.loads(json_path.read_text(encoding="utf-8"))
    paths = [Path(m["path"]).name for m in report["models"]]
    assert paths == sorted(p.name for p in FOREIGN.glob("*.onnx"))
    for model in report["models"]:
        name = Path(model["path"]).name
        checks = {c["name"]: c for c in model["checks"]}
        if name == "sklearn_mlp.onnx":  # no float tensor output (ZipMap): the label output, ArgMax
            assert not model["ok"]
            assert checks["inspect"]["status"] == "fail" and "ArgMax" in checks["inspect"]["message"]
            assert checks["eligibility"]["status"] == "fail"
            assert "not piecewise linear" in checks["eligibility"]["message"]
        elif name == "sklearn_mlp_nozipmap.onnx":  # checked on its probability output's subgraph
            assert model["ok"], checks
            assert checks["inspect"]["details"]["output"]["name"] == "probabilities"
            assert "expected output not compared" in checks["validate-given-npy"]["message"]
        else:
            assert set(_statuses(model).values()) == {"pass", "skip"}, (name, checks)
            assert [n for n, s in _statuses(model).items() if s == "skip"] == ["dmbp-smoke"]
            assert checks["validate-given-npy"]["message"].startswith(name.replace(".onnx", ".npz"))
    assert report["summary"]["failed"] == 1 and report["summary"]["checks"]["error"] == 0

    lines = out.splitlines()
    verdicts = [line.split()[:2] for line in lines if line.startswith(("PASS ", "FAIL "))]
    assert [Path(p).name for _, p in verdicts] == paths
    assert lines[-1].startswith(f"audit: 9 of {len(paths)} model(s) passed (1 failed)")

    root = ET.parse(junit_path).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [m["path"] for m in report["models"]]
    assert int(root.get("failures")) == report["summary"]["checks"]["fail"]
    assert int(root.get("skipped")) == report["summary"]["checks"]["skip"]
    assert int(root.get("tests")) == sum(len(m["checks"]) for m in report["models"])


def test_passing_folder_exits_0_with_its_config(torch_fixture, tmp_path, run_cli):
    config = tmp_path / "audit.toml"
    config.write_text("samples = 1\nexplain_iterations = 30\ntime_budget_s = 60\n")
    json_path = tmp_path / "audit.json"
    done = run_cli("audit", str(torch_fixture.parent), "--config", str(config), "--json", str(json_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # no progress bar off a terminal
    assert done.stdout.startswith(f"PASS {torch_fixture}  ✓ load  ✓ inspect  ✓ validate-seeded-1")
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert report["ok"] and report["config"]["samples"] == 1 and report["config"]["time_budget_s"] == 60
    assert report["models"][0]["size"] == torch_fixture.stat().st_size and len(report["models"][0]["sha256"]) == 64


def test_hostile_corpus_fails_cleanly_and_completes(tmp_path, capsys):
    built = build_corpus(tmp_path / "corpus")
    json_path = tmp_path / "audit.json"
    code = main(["audit", str(tmp_path / "corpus"), "--no-explain", "--samples", "1", "--json", str(json_path)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    models = {m["path"]: m for m in json.loads(json_path.read_text(encoding="utf-8"))["models"]}
    checked = 0
    for case in CASES:
        source, kwargs = built[case.name]
        if kwargs or not isinstance(source, Path) or not source.is_file():
            continue  # needs a load option, is bytes, or is no file: covered by tests/hostile
        load = models[str(source)]["checks"][0]
        assert load["name"] == "load" and load["status"] == "fail", (case.name, load)
        assert re.search(case.match, load["message"]), (case.name, load["message"])
        assert {c["status"] for c in models[str(source)]["checks"][1:]} == {"skip"}
        checked += 1
    assert checked >= 45
    assert not [c for m in models.values() for c in m["checks"] if c["status"] == "error"]


def test_time_budget_exceeded_is_a_failed_check(net_path, tmp_path, capsys):
    json_path = tmp_path / "audit.json"
    assert main(["audit", str(net_path), "--time-budget", "0.01", "--json", str(json_path)]) == 1
    out, _ = capsys.readouterr()
    checks = json.loads(json_path.read_text(encoding="utf-8"))["models"][0]["checks"]
    last = checks[-1]
    assert (last["name"], last["status"]) == ("time-budget", "fail")
    assert re.fullmatch(r"exceeded the time budget of 0\.01 s during check '[a-z0-9-]+'", last["message"])
    assert "✗ time-budget" in out
    assert [c["name"] for c in checks[:-1]] == ["load", "inspect", "validate-seeded-4", "validate-given-npy",
                                                "eligibility", "dmbp-smoke"]  # fmt: skip
    assert any(c["status"] == "skip" and c["message"].startswith("not run: the time budget ran out") for c in checks)


def test_a_dead_worker_is_an_error_and_the_next_model_gets_a_fresh_one(net_path):
    config = AuditConfig(samples=1, explain=False)
    with Runner(config) as runner:
        assert runner.audit(net_path).ok
        runner._worker.process.kill()
        crashed = runner.audit(net_path)
        assert not crashed.ok and crashed.checks[-1].name == "worker"
        assert crashed.checks[-1].status == "error" and "exit code -9" in crashed.checks[-1].message
        assert runner.audit(net_path).ok


def test_oversized_model_is_refused_before_reading(net_path, tmp_path, monkeypatch, capsys):
    def no_worker():
        raise AssertionError("a worker was started for a model over the size limit")

    monkeypatch.setattr(runner_module, "_Worker", no_worker)
    json_path = tmp_path / "audit.json"
    assert main(["audit", str(net_path), "--max-model-mb", "0.0001", "--json", str(json_path)]) == 1
    model = json.loads(json_path.read_text(encoding="utf-8"))["models"][0]
    load = model["checks"][0]
    assert load["status"] == "fail" and "more than max_model_mb = 0.0001; it was not read" in load["message"]
    assert model["sha256"] is None and model["size"] == net_path.stat().st_size
    assert {c["status"] for c in model["checks"][1:]} == {"skip"}
    assert f"load: the model file is {net_path.stat().st_size} bytes" in capsys.readouterr().out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_named_like_a_model_is_never_opened(tmp_path, monkeypatch):
    def no_worker():
        raise AssertionError("a worker was started for a FIFO")

    monkeypatch.setattr(runner_module, "_Worker", no_worker)
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)  # opening it for reading would block forever
    (result,) = runner_module.run_audit([fifo], AuditConfig())
    assert result.checks[0].status == "fail" and result.checks[0].message == f"not a regular file: {fifo}"
    assert result.sha256 is None and result.size is None

"""Parallel audits (local workers, Ray tasks) write the reports of a sequential audit."""

import json
import re
import shutil
from pathlib import Path

import pytest

from dmbp_onnx.cli import main

FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"
_FOREIGN_MODELS = ("jax_flax_cnn", "sklearn_mlp", "torch_legacy_cnn", "paddle_cnn")


@pytest.fixture
def models(tmp_path):
    """Four foreign fixtures (one fails its checks) with their inputs, alone in a folder."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in _FOREIGN_MODELS:
        for suffix in (".onnx", ".npz"):
            shutil.copy(FOREIGN / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


def _audit(models, tmp_path, capsys, label, *extra):
    json_path, junit_path = tmp_path / f"{label}.json", tmp_path / f"{label}.xml"
    code = main(["audit", str(models), "--samples", "1", "--no-explain", "--json", str(json_path),
                 "--junit", str(junit_path), *extra])
    out = capsys.readouterr().out
    report = json.loads(json_path.read_text(encoding="utf-8"))
    report.pop("started"), report.pop("duration_s")
    for model in report["models"]:
        model.pop("duration_s")
        for check in model["checks"]:
            check.pop("duration_s")
    junit = re.sub(r' (time|timestamp)="[^"]*"', "", junit_path.read_text(encoding="utf-8"))
    lines = [re.sub(r"\(\d+(\.\d+)? s\)$", "", line) for line in out.splitlines()[:-1]]
    return code, lines, report, junit


def test_jobs_2_reports_equal_the_sequential_ones(models, tmp_path, capsys):
    sequential = _audit(models, tmp_path, capsys, "sequential")
    parallel = _audit(models, tmp_path, capsys, "parallel", "--jobs", "2")
    assert sequential[0] == 1 and len(sequential[2]["models"]) == 4
    assert parallel == sequential


def test_ray_tasks_report_equal_the_sequential_ones(models, tmp_path, capsys):
    ray = pytest.importorskip("ray", reason="the optional Ray extra is not installed")
    sequential = _audit(models, tmp_path, capsys, "sequential")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=128 * 2**20, log_to_driver=False)
    try:
        on_ray = _audit(models, tmp_path, capsys, "ray", "--ray")
    finally:
        ray.shutdown()
    assert on_ray == sequential


def test_jobs_below_1_is_a_usage_error(models, capsys):
    assert main(["audit", str(models), "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "own-interpreter"])
def test_every_worker_runs_one_torch_thread_whatever_jobs(models, tmp_path, capsys, monkeypatch, forked):
    """A model's figures depend on torch's thread count: --jobs must not change it (nor the environment).

    Forked workers inherit the fork server's environment: one server per audit, whatever --jobs."""
    import subprocess

    from dmbp_onnx.audit import zygote as zygote_module

    if forked and not zygote_module.SUPPORTED:
        pytest.skip("workers are forked on Linux only")
    monkeypatch.setattr(zygote_module, "SUPPORTED", forked)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    threads, popen = [], subprocess.Popen

    def recording_popen(*args, **kwargs):
        threads.append(kwargs["env"]["OMP_NUM_THREADS"])
        return popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    _audit(models, tmp_path, capsys, "sequential")
    _audit(models, tmp_path, capsys, "parallel", "--jobs", "2")
    assert threads == (["1", "1"] if forked else ["1", "1", "1"])

"""Workers forked from the fork server (dmbp_onnx.audit.zygote): same reports, budgets and crash handling."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import dmbp_onnx.audit.zygote as zygote_module
from dmbp_onnx.audit.config import AuditConfig
from dmbp_onnx.audit.parallel import audit_models
from dmbp_onnx.audit.runner import Runner, run_audit
from dmbp_onnx.audit.zygote import Zygote

pytestmark = pytest.mark.skipif(not zygote_module.SUPPORTED, reason="workers are forked on Linux only")

FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"
CONFIG = AuditConfig(samples=1)


def _without_timings(results):
    reports = []
    for result in results:
        report = result.to_dict()
        report.pop("duration_s")
        for check in report["checks"]:
            check.pop("duration_s")
        reports.append(report)
    return reports


@pytest.fixture
def zygote():
    with Zygote(1) as server:
        yield server


@pytest.fixture
def popens(monkeypatch):
    """The command lines of every process the audit starts as an interpreter of its own."""
    started, popen = [], subprocess.Popen

    def recording_popen(args, *rest, **kwargs):
        started.append(" ".join(map(str, args)))
        return popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    return started


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_forked_workers_report_what_workers_of_their_own_report(net_path, monkeypatch):
    """The DMBP smoke check's float sums would show another torch thread count or a state left by the fork."""
    models = [net_path, FOREIGN / "torch_legacy_cnn.onnx", FOREIGN / "keras_tf_cnn.onnx"]
    forked = run_audit(models, CONFIG)
    monkeypatch.setattr(zygote_module, "SUPPORTED", False)
    own = run_audit(models, CONFIG)
    assert all(result.ok for result in forked)
    assert _without_timings(forked) == _without_timings(own)


def test_jobs_2_pays_the_imports_once(net_path, popens, monkeypatch):
    forks, fork = [], Zygote.fork

    def counting_fork(self, *args, **kwargs):
        forks.append(self)
        return fork(self, *args, **kwargs)

    monkeypatch.setattr(Zygote, "fork", counting_fork)
    results = audit_models([net_path, FOREIGN / "torch_legacy_cnn.onnx", FOREIGN / "paddle_cnn.onnx"], CONFIG, jobs=2)
    assert [result.ok for result in results] == [True, True, True]
    assert len(popens) == 1 and " -m dmbp_onnx.audit.zygote " in popens[0]
    assert len(forks) == 2 and forks[0] is forks[1]  # two workers, forked from one server


def test_the_server_has_one_thread_when_it_forks(zygote, net_path):
    """fork() copies only the calling thread: a server with more (onnxruntime starts one on import,
    torch's OpenMP pool after its first parallel op) could hand its workers locks nobody releases."""
    with Runner(CONFIG, zygote=zygote) as runner:
        assert runner.audit(net_path).ok
        assert len(os.listdir(f"/proc/{zygote.process.pid}/task")) == 1


def test_a_model_over_its_budget_kills_its_forked_worker_and_the_next_model_gets_a_fresh_fork(
        net_path, zygote, popens):  # fmt: skip
    with Runner(CONFIG, zygote=zygote) as runner:
        assert runner.audit(net_path).ok
        first = runner._worker.process.pid
        runner.config = CONFIG.replace(time_budget_s=0.01)
        overrun = runner.audit(net_path)
        assert overrun.checks[-1].name == "time-budget" and runner._worker is None
        assert not _alive(first)  # killed and reaped by the server
        runner.config = CONFIG
        assert runner.audit(net_path).ok and runner._worker.process.pid != first
    assert popens == []  # every worker was forked


@pytest.mark.parametrize("how", ["kill", "segfault"])
def test_a_dead_forked_worker_is_an_error_with_its_exit_code(net_path, zygote, how):
    with Runner(CONFIG, zygote=zygote) as runner:
        assert runner.audit(net_path).ok
        if how == "kill":
            runner._worker.process.kill()
        else:  # a crash in a native library, as the server sees it
            os.kill(runner._worker.process.pid, signal.SIGSEGV)
        crashed = runner.audit(net_path)
        assert not crashed.ok and crashed.checks[-1].name == "worker" and crashed.checks[-1].status == "error"
        code = -signal.SIGKILL if how == "kill" else -signal.SIGSEGV
        assert f"exit code {code}" in crashed.checks[-1].message
        assert runner.audit(net_path).ok


def test_a_dead_server_falls_back_to_workers_of_their_own(net_path, zygote, popens):
    with Runner(CONFIG, zygote=zygote) as runner:
        assert runner.audit(net_path).ok
        orphan = runner._worker.process
        zygote.process.kill()
        zygote.process.wait()
        assert runner.audit(net_path).ok  # the forked worker outlives its server
        orphan.kill()  # by process id now
        crashed = runner.audit(net_path)
        assert crashed.checks[-1].name == "worker" and "exit code unknown" in crashed.checks[-1].message
        assert runner.audit(net_path).ok
    assert len(popens) == 1 and popens[0].endswith("-m dmbp_onnx.audit.worker")


def test_closing_the_server_kills_the_workers_left(net_path):
    server = Zygote(1)
    runner = Runner(CONFIG, zygote=server)
    assert runner.audit(net_path).ok
    pid = runner._worker.process.pid
    server.close()  # the runner still holds a live worker
    assert server.process.returncode == 0 and not _alive(pid)
    runner.__exit__(None, None, None)


def test_an_unused_server_closes_at_once():
    server = Zygote(1)  # still importing torch when closed
    server.close()
    assert server.process.returncode == -signal.SIGKILL


def test_the_audit_modules_stay_light():
    script = ("import sys, dmbp_onnx, dmbp_onnx.cli.audit_cmd, dmbp_onnx.audit.parallel, dmbp_onnx.audit.zygote; "
              "print(json.dumps(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", "import json; " + script], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    assert json.loads(done.stdout) == []

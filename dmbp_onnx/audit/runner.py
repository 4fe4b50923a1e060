"""Audit many models, each in a child process with a time budget.

One worker process (:mod:`dmbp_onnx.audit.worker`) runs the models one after the
other, so the heavy imports are paid once. When a model overruns its budget the
worker is killed, the model gets a failed ``time-budget`` check, and a fresh
worker takes the next model; when the worker dies (a crash in a native library)
the model gets an ``error`` check named ``worker``. No model can stall the run.
On Linux workers are forked from a fork server that has done the imports
(:mod:`dmbp_onnx.audit.zygote`), so a fresh worker takes milliseconds.
"""

from __future__ import annotations

import hashlib
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from dmbp_onnx.audit.checks import CheckResult, check_names
from dmbp_onnx.audit.config import AuditConfig
from dmbp_onnx.audit.zygote import ForkedProcess, Zygote, ZygoteGone, child_env, last_words
from dmbp_onnx.audit.zygote import start as start_zygote
from dmbp_onnx.errors import InputError
from dmbp_onnx.jsonio import dumps, loads

STARTUP_TIMEOUT_S = 300.0
"""How long a fresh worker may take to import its libraries (not part of any model's budget)."""

_HASH_CHUNK = 2**20

WORKER_THREADS = 1
"""torch threads of every audit worker (see :class:`Runner`)."""


@dataclass
class ModelResult:
    """Every check of one model.

    Attributes
    ----------
    path : str
        The model's path as found.
    sha256 : str or None
        Hex digest of the file (None when it was not read: missing or over the size limit).
    size : int or None
        File size in bytes (None when there is no regular file).
    checks : list of CheckResult
        In order; see :func:`~dmbp_onnx.audit.checks.check_names`.
    duration_s : float
        Wall-clock time of the model, hashing included, worker start-up excluded.
    """

    path: str
    sha256: str | None
    size: int | None
    checks: list[CheckResult] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether no check failed or errored."""
        return all(c.status in ("pass", "skip") for c in self.checks)

    def to_dict(self) -> dict:
        """The result as a JSON-ready dict (the ``models`` entries of the report)."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "size": self.size,
            "ok": self.ok,
            "duration_s": self.duration_s,
            "checks": [c.to_dict() for c in self.checks],
        }


def collect_models(paths: Iterable[str | Path]) -> list[Path]:
    """The models named by ``paths``: files as given, folders searched for ``*.onnx`` recursively.

    Raises
    ------
    InputError
        When a path does not exist or no model is found at all.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.onnx") if p.is_file()))
        elif path.exists() or path.is_symlink():
            found.append(path)
        else:
            raise InputError(f"no such file or folder: {path}")
    unique = list(dict.fromkeys(found))
    if not unique:
        raise InputError(f"no .onnx models found in {', '.join(str(p) for p in paths)}")
    return unique


def _remaining(names: list[str], done: list[CheckResult], reason: str) -> list[CheckResult]:
    seen = {c.name for c in done}
    return [CheckResult(name, "skip", f"not run: {reason}") for name in names if name not in seen]


def _precheck(path: Path, config: AuditConfig) -> tuple[int | None, str | None, CheckResult | None]:
    """Size and hash of the file, read only when it is a regular file within the size limit."""
    if not path.is_file():
        return None, None, CheckResult("load", "fail", f"not a regular file: {path}")
    size = path.stat().st_size
    if size > config.max_bytes:
        message = (
            f"the model file is {size} bytes ({size / 2**20:.3g} MiB), more than "
            f"max_model_mb = {config.max_model_mb:g}; it was not read"
        )
        return size, None, CheckResult("load", "fail", message, details={"size": size})
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
                digest.update(chunk)
    except OSError as exc:
        return size, None, CheckResult("load", "fail", f"cannot read {path}: {exc.strerror or exc}")
    return size, digest.hexdigest(), None


class _WorkerGone(Exception):
    """The worker process ended (crash, kill, broken pipe)."""


class _Worker:
    """One worker and a thread reading its answers: forked from ``zygote`` while it lives, else a
    ``python -m dmbp_onnx.audit.worker`` child of its own (``threads`` torch threads)."""

    def __init__(self, threads: int | None = None, zygote: Zygote | None = None) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.process: subprocess.Popen | ForkedProcess | None = None
        if zygote is not None and zygote.alive:
            try:
                self.process = zygote.fork(self._stderr.fileno(), STARTUP_TIMEOUT_S)
            except ZygoteGone:
                pass  # the fork server died (killed, out of memory): a worker of its own instead
        if self.process is None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dmbp_onnx.audit.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=child_env(threads),  # torch's intra-op threads in the child (read at its start)
                text=True,
                encoding="utf-8",
            )
        self._events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with self.process.stdout:
            for line in self.process.stdout:
                self._events.put(line)
        self._events.put(None)

    def event(self, timeout: float) -> dict | None:
        """The next message, or None when ``timeout`` seconds pass first.

        Raises
        ------
        _WorkerGone
            When the worker's output ended or was not the protocol.
        """
        try:
            line = self._events.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None
        if line is None:
            raise _WorkerGone(self._death())
        try:
            return loads(line)
        except json.JSONDecodeError:
            raise _WorkerGone(f"the worker wrote a line outside the protocol: {line.strip()[:200]!r}") from None

    def submit(self, path: Path, config: AuditConfig) -> None:
        """Send one job."""
        try:
            self.process.stdin.write(dumps({"path": str(path), "config": config.to_dict()}) + "\n")
            self.process.stdin.flush()
        except OSError:
            raise _WorkerGone(self._death()) from None

    def _death(self) -> str:
        code, last = last_words(self.process, self._stderr)
        how = "with exit code unknown (its fork server ended first)" if code is None else f"with exit code {code}"
        return f"the worker process ended {how}" + (f"; its last message: {last}" if last else "")

    def _release(self) -> None:
        for stream in (self.process.stdin, self._stderr):  # stdout: closed by the reading thread
            try:
                stream.close()
            except OSError:
                pass

    def kill(self) -> None:
        """End the worker now."""
        self.process.kill()
        self.process.wait()
        self._release()

    def close(self) -> None:
        """Let the worker finish (stdin closed), killing it if it does not."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self._release()


class Runner:
    """Audits models one by one in a worker process, restarting it when it must be killed.

    ``threads``: torch threads of the worker (None: torch's own choice, all cores). The default,
    :data:`WORKER_THREADS`, is one thread, whatever ``--jobs`` and the machine: a model's figures
    (float sums) depend on the thread count, and the reports of ``--jobs 1``, ``--jobs N`` and Ray
    must be equal; more cores are used by auditing more models at once. One thread is also what the
    small models of an audit run best on, and it cannot be oversubscribed on a busy machine (two torch
    threads sharing one free core made a sequential audit of 19 small models 20x slower).

    ``zygote``: the fork server workers are forked from (its own ``threads`` apply), shared by the
    runners of one audit and closed by its owner; None: each worker is an interpreter of its own.
    """

    def __init__(self, config: AuditConfig, threads: int | None = WORKER_THREADS,
                 zygote: Zygote | None = None) -> None:
        self.config, self.threads, self.zygote = config, threads, zygote
        self._worker: _Worker | None = None
        self._startup_s = 0.0  # worker start-up time spent for the current model (not part of its time)

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self._drop(kill=exc[0] is not None)

    def _drop(self, kill: bool) -> None:
        if self._worker is not None:
            self._worker.kill() if kill else self._worker.close()
            self._worker = None

    def _ready_worker(self) -> _Worker:
        if self._worker is None:
            begin = time.perf_counter()
            worker = _Worker(self.threads, self.zygote)
            try:
                event = worker.event(STARTUP_TIMEOUT_S)
                if event is None or event.get("event") != "ready":
                    raise _WorkerGone(f"the worker did not start within {STARTUP_TIMEOUT_S:g} s")
            except _WorkerGone:
                worker.kill()
                raise
            self._worker = worker
            self._startup_s = time.perf_counter() - begin
        return self._worker

    def _overrun(self, names: list[str], done: list[CheckResult], current: str) -> list[CheckResult]:
        """The results of a model whose worker was killed at the end of its budget."""
        self._drop(kill=True)
        budget = self.config.time_budget_s
        failure = CheckResult(
            "time-budget",
            "fail",
            f"exceeded the time budget of {budget:g} s during check '{current}'",
            budget,
            {"time_budget_s": budget, "check": current},
        )
        return done + _remaining(names, done, f"the time budget ran out during '{current}'") + [failure]

    def _checks(self, path: Path) -> list[CheckResult]:
        """Run the checks of one model in the worker, within the time budget."""
        names = check_names(self.config)
        done: list[CheckResult] = []
        current = names[0]
        try:
            worker = self._ready_worker()
            worker.submit(path, self.config)
            deadline = time.monotonic() + self.config.time_budget_s
            while True:
                event = worker.event(deadline - time.monotonic())
                if event is None:
                    return self._overrun(names, done, current)
                if event["event"] == "start":
                    current = event["check"]
                elif event["event"] == "result":
                    done.append(CheckResult(**event["check"]))
                elif event["event"] == "done":
                    return done
        except _WorkerGone as exc:
            self._drop(kill=True)
            failure = CheckResult("worker", "error", f"during check '{current}': {exc}", details={"check": current})
            return done + _remaining(names, done, "the worker process ended") + [failure]

    def audit(self, path: Path) -> ModelResult:
        """Every check of the model at ``path``."""
        start, self._startup_s = time.perf_counter(), 0.0
        size, sha256, refusal = _precheck(path, self.config)
        if refusal is not None:
            checks = [refusal, *_remaining(check_names(self.config), [refusal], "the model was not read")]
        else:
            checks = self._checks(path)
        return ModelResult(str(path), sha256, size, checks, time.perf_counter() - start - self._startup_s)


def run_audit(
    models: Iterable[Path], config: AuditConfig, on_model: Callable[[ModelResult], None] = lambda result: None,
    zygote: Zygote | None = None,
) -> list[ModelResult]:
    """Audit ``models`` in order; ``on_model`` sees each result as soon as it is known.

    Parameters
    ----------
    models : iterable of pathlib.Path
        The models, in report order.
    config : AuditConfig
        Settings (each model keeps its ``time_budget_s``).
    on_model : callable
        Sees each result as soon as it is known.
    zygote : Zygote or None
        The fork server to fork workers from (the caller closes it); None: one of its own where
        supported (:data:`~dmbp_onnx.audit.zygote.SUPPORTED`), closed at the end.
    """
    results = []
    own = zygote is None
    zygote = start_zygote(WORKER_THREADS) if own else zygote
    try:
        with Runner(config, zygote=zygote) as runner:
            for path in models:
                result = runner.audit(Path(path))
                on_model(result)
                results.append(result)
    finally:
        if own and zygote is not None:
            zygote.close()
    return results

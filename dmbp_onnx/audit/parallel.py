"""Audit models in parallel: a pool of local workers (``--jobs N``) or Ray tasks (``--ray``).

Each model still runs in a worker process under its time budget
(:class:`~dmbp_onnx.audit.runner.Runner`); only the scheduling changes: each local worker is
started once and audits model after model, and the largest files are handed out first. The local
workers are forked from one fork server (:mod:`dmbp_onnx.audit.zygote`), so the heavy imports are
paid once, not once per worker. Results come back in the models' order and ``on_model`` sees them in
that order too, so the printed lines and the JSON/JUnit reports are those of a sequential run
(timings aside).
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from dmbp_onnx.audit.config import AuditConfig
from dmbp_onnx.audit.runner import WORKER_THREADS, ModelResult, Runner, run_audit
from dmbp_onnx.audit.zygote import Zygote
from dmbp_onnx.audit.zygote import start as start_zygote
from dmbp_onnx.errors import InputError


def _longest_first(models: list[Path]) -> list[int]:
    """The models' positions, largest file first (a proxy for the longest audit, so that no long
    model starts last while the other workers sit idle); missing files count as empty."""

    def size(position: int) -> int:
        try:
            return models[position].stat().st_size
        except OSError:
            return 0

    return sorted(range(len(models)), key=lambda position: -size(position))


class _InOrder:
    """Hands results to ``on_model`` in the models' order, whatever order they finish in."""

    def __init__(self, count: int, on_model: Callable[[ModelResult], None]) -> None:
        self.results: list[ModelResult | None] = [None] * count
        self._next, self._on_model, self._lock = 0, on_model, threading.Lock()

    def put(self, position: int, result: ModelResult) -> None:
        with self._lock:
            self.results[position] = result
            while self._next < len(self.results) and self.results[self._next] is not None:
                self._on_model(self.results[self._next])
                self._next += 1


def _local(models: list[Path], config: AuditConfig, jobs: int, done: _InOrder, zygote: Zygote | None) -> None:
    """``jobs`` threads, each driving its own :class:`Runner` (one worker process each, forked from
    ``zygote`` when there is one)."""
    local = threading.local()
    runners: list[Runner] = []
    lock = threading.Lock()

    def audit(position: int) -> None:
        if not hasattr(local, "runner"):
            local.runner = Runner(config, zygote=zygote)  # one torch thread, as in a sequential audit
            with lock:
                runners.append(local.runner)
        done.put(position, local.runner.audit(models[position]))

    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="audit") as pool:
            for future in [pool.submit(audit, k) for k in _longest_first(models)]:
                future.result()
    finally:
        for runner in runners:
            runner.__exit__(None, None, None)


_task_runner: tuple[str, Runner] | None = None
"""The :class:`Runner` of this Ray worker process, kept between tasks, and its settings (JSON)."""


def _audit_one(path: str, config: dict) -> ModelResult:
    """One model (the body of a Ray task), in the :class:`Runner` this Ray worker process keeps.

    Ray reuses its worker processes for later tasks, so the audit worker's imports (seconds: more
    than most models' checks) are paid once per Ray worker, not once per model. The audit worker
    exits when this process does (its input closes).
    """
    global _task_runner
    key = json.dumps(config, sort_keys=True, default=str)
    if _task_runner is None or _task_runner[0] != key:
        if _task_runner is not None:
            _task_runner[1].__exit__(None, None, None)
        _task_runner = (key, Runner(AuditConfig(**config)))
    return _task_runner[1].audit(Path(path))


def _ray(models: list[Path], config: AuditConfig, address: str | None, done: _InOrder) -> None:
    """One Ray task per model (retried if its process dies), largest first, collected as they finish."""
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs the optional Ray extra: pip install 'dmbp-onnx[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), log_to_driver=False)
    task = ray.remote(num_cpus=1, max_retries=3)(_audit_one)
    pending = {task.remote(str(models[k]), config.to_dict()): k for k in _longest_first(models)}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        done.put(pending.pop(ready[0]), ray.get(ready[0]))


def audit_models(models: Sequence[Path], config: AuditConfig,
                 on_model: Callable[[ModelResult], None] = lambda result: None, jobs: int = 1,
                 use_ray: bool = False, address: str | None = None,
                 zygote: Zygote | None = None) -> list[ModelResult]:
    """Audit ``models``: sequentially (``jobs=1``), on ``jobs`` local workers, or as Ray tasks.

    Parameters
    ----------
    models : sequence of pathlib.Path
        The models, in report order.
    config : AuditConfig
        Settings (each model keeps its ``time_budget_s``).
    on_model : callable
        Sees each result, in the models' order, as soon as it and all before it are known.
    jobs : int
        Local workers when not on Ray.
    use_ray, address
        Run each model as a Ray task, on the cluster at ``address`` (default ``RAY_ADDRESS``, else local).
    zygote : Zygote or None
        The fork server local workers are forked from, started early by the caller (who closes it);
        None: one of this call's own where supported. Ray tasks do not use it.

    Raises
    ------
    InputError
        ``jobs`` below 1, or ``use_ray`` without Ray installed.
    """
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    models = [Path(p) for p in models]
    if use_ray:
        done = _InOrder(len(models), on_model)
        _ray(models, config, address, done)
        return list(done.results)
    own = zygote is None
    zygote = start_zygote(WORKER_THREADS) if own else zygote
    try:
        if jobs == 1:
            return run_audit(models, config, on_model=on_model, zygote=zygote)
        done = _InOrder(len(models), on_model)
        _local(models, config, min(jobs, len(models)), done, zygote)
        return list(done.results)
    finally:
        if own and zygote is not None:
            zygote.close()

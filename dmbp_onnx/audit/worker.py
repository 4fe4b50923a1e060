"""The child process that runs the checks: ``python -m dmbp_onnx.audit.worker``.

Protocol, one strict JSON object per line (:mod:`dmbp_onnx.jsonio`, which keeps NaN and
infinity across). The parent writes jobs on stdin:
``{"path": ..., "config": {...}}``. The worker answers on its original stdout
(anything the libraries print goes to stderr instead): ``{"event": "ready"}`` once
its imports are done, then per job ``{"event": "start", "check": NAME}`` before each
check, ``{"event": "result", "check": {...}}`` after it and ``{"event": "done"}``.
It exits when stdin closes, at once (``os._exit``: tearing down torch and onnxruntime at interpreter
exit takes longer than many a model's checks, and there is nothing left to save).

A worker is either started as its own interpreter or forked, already past :func:`preload`, from the
fork server :mod:`dmbp_onnx.audit.zygote`; the protocol is the same.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import IO

from dmbp_onnx.jsonio import dumps, loads

HEAVY_MODULES = ("dmbp_onnx.methods", "dmbp_onnx.audit.checks", "dmbp_onnx.validate")
"""What the checks import (torch, onnx, the twin, DMBP): seconds, paid before the first budget starts."""

WARM_MODULES = ("torch.fx.experimental.symbolic_shapes", "numpy.random", "dmbp_onnx.metrics.negative")
"""Modules the checks import lazily on their first model (sympy comes with the first: about 0.4 s,
which would otherwise be charged to the first model's budget); skipped where they do not exist."""


def preload(runtime: bool = True) -> None:
    """Import what the checks need, so that no budget pays for it.

    Parameters
    ----------
    runtime : bool
        Import onnxruntime too. The fork server does not: importing onnxruntime starts a thread,
        and a process with more than one thread must not fork; its workers import it themselves
        (about 0.1 s).
    """
    for name in HEAVY_MODULES:
        importlib.import_module(name)
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    if runtime:
        importlib.import_module("onnxruntime")


def _send(channel: IO[str], message: dict) -> None:
    channel.write(dumps(message) + "\n")
    channel.flush()


def serve(jobs: IO[str], channel: IO[str]) -> None:
    """Run every job read from ``jobs`` and report on ``channel`` until ``jobs`` ends."""
    preload()  # pay for the heavy imports before the first budget starts
    from dmbp_onnx.audit.checks import audit_model
    from dmbp_onnx.audit.config import AuditConfig

    _send(channel, {"event": "ready"})
    for line in jobs:
        job = loads(line)
        audit_model(
            job["path"],
            AuditConfig(**job["config"]),
            on_start=lambda name: _send(channel, {"event": "start", "check": name}),
            on_result=lambda result: _send(channel, {"event": "result", "check": result.to_dict()}),
        )
        _send(channel, {"event": "done"})


def main() -> None:
    """Keep the protocol channel for ourselves; send stray prints of libraries to stderr."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    jobs = open(sys.stdin.fileno(), encoding="utf-8", closefd=False)
    serve(jobs, channel)
    channel.close()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

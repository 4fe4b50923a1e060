"""The child process that runs the checks: ``python -m dmbp_onnx.audit.worker``.

Protocol, one strict JSON object per line (:mod:`dmbp_onnx.jsonio`, which keeps NaN and
infinity across). The parent writes jobs on stdin:
``{"path": ..., "config": {...}}``. The worker answers on its original stdout
(anything the libraries print goes to stderr instead): ``{"event": "ready"}`` once
its imports are done, then per job ``{"event": "start", "check": NAME}`` before each
check, ``{"event": "result", "check": {...}}`` after it and ``{"event": "done"}``.
It exits when stdin closes, at once (``os._exit``: tearing down torch and onnxruntime at interpreter
exit takes longer than many a model's checks, and there is nothing left to save).
"""

from __future__ import annotations

import os
import sys
from typing import IO

from dmbp_onnx.jsonio import dumps, loads


def _send(channel: IO[str], message: dict) -> None:
    channel.write(dumps(message) + "\n")
    channel.flush()


def serve(jobs: IO[str], channel: IO[str]) -> None:
    """Run every job read from ``jobs`` and report on ``channel`` until ``jobs`` ends."""
    import onnxruntime  # noqa: F401 - pay for the heavy imports before the first budget starts
    import dmbp_onnx.methods  # noqa: F401
    from dmbp_onnx.audit.checks import audit_model
    from dmbp_onnx.audit.config import AuditConfig
    from dmbp_onnx.validate import validate  # noqa: F401

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

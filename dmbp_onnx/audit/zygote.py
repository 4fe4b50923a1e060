"""A fork server for audit workers: the heavy imports are paid once, each worker is forked from it.

``python -m dmbp_onnx.audit.zygote FD`` imports what the checks need
(:func:`~dmbp_onnx.audit.worker.preload`, without onnxruntime: its import starts a thread, and a
process with threads must not fork), then forks one worker per request and reports how each ends.
It runs no check itself, so no torch or OpenMP thread exists when it forks; its environment, that of a
worker (:func:`child_env`: one torch thread), is what every forked worker inherits. A forked worker
speaks the protocol of :mod:`dmbp_onnx.audit.worker` on the pipes it was given, so the driver treats it
as it treats a worker started as its own interpreter, and starting one takes milliseconds, not the
seconds of importing torch, onnx and the twin again: a worker killed at the end of a model's budget or
dead in a crash is replaced at once, and ``--jobs N`` pays the imports once, not N times.

Protocol on FD, an ``AF_UNIX`` ``SOCK_SEQPACKET`` socket, one JSON object per message. Driver to
server: ``{"fork": ID}`` carrying three file descriptors (the worker's stdin, stdout and stderr) and
``{"kill": ID}``. Server to driver: ``{"forked": ID, "pid": PID}`` and, when that worker has ended,
``{"exit": ID, "code": CODE}`` (CODE as :attr:`subprocess.Popen.returncode`: minus the signal number
when a signal ended it). Workers are named by ID, never by process id, so a reused process id cannot
reach the wrong process. When the driver's end closes, the server kills the workers left and exits.

Linux only (:data:`SUPPORTED`); elsewhere workers start as their own interpreters.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import IO

import dmbp_onnx

SUPPORTED = sys.platform.startswith("linux") and hasattr(socket, "send_fds")
"""Whether workers can be forked from a :class:`Zygote` here (Linux: fork after imports only)."""

_MESSAGE_BYTES = 4096


def child_env(threads: int | None) -> dict[str, str]:
    """The environment of an audit worker or fork server: this one, with ``threads`` torch threads
    (``OMP_NUM_THREADS``, read when torch is imported; None: torch's own choice) and this package first
    on ``PYTHONPATH``."""
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    package_root = str(Path(dmbp_onnx.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env



def last_words(process: subprocess.Popen | ForkedProcess, stderr: IO[bytes]) -> tuple[int | None, str]:
    """``(exit code, last non-empty line written to stderr)`` of a process that has ended or is ending: it
    is waited for up to 10 s, then killed. ``process`` is a ``subprocess.Popen`` or a :class:`ForkedProcess`;
    ``stderr`` the file its standard error went to."""
    try:
        code = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    stderr.seek(0)
    lines = [line.strip() for line in stderr.read().decode("utf-8", "replace").splitlines()]
    return code, next((line for line in reversed(lines) if line), "")

class ZygoteGone(Exception):
    """The fork server ended (or never answered); workers can no longer be forked from it."""


class ForkedProcess:
    """A worker forked by a :class:`Zygote`: the part of :class:`subprocess.Popen` the runner uses.

    Attributes
    ----------
    pid : int
        The worker's process id (for messages; kills go through the fork server by ID).
    stdin, stdout : text file
        The write end of the worker's job pipe and the read end of its protocol pipe.
    """

    def __init__(self, zygote: "Zygote", ident: int, pid: int, stdin: IO[str], stdout: IO[str]) -> None:
        self._zygote, self._ident, self.pid = zygote, ident, pid
        self.stdin, self.stdout = stdin, stdout
        self.returncode: int | None = None

    def kill(self) -> None:
        """SIGKILL the worker (no-op once it has ended)."""
        self._zygote._kill(self._ident, self.pid)

    def wait(self, timeout: float | None = None) -> int | None:
        """The worker's exit code once it has ended (None: unknown, the fork server died first).

        Raises
        ------
        subprocess.TimeoutExpired
            When it is still running after ``timeout`` seconds.
        """
        self.returncode = self._zygote._wait(self._ident, timeout)
        return self.returncode


class Zygote:
    """Driver side of the fork server: starts it, forks workers from it, learns how they end.

    Thread-safe: the runners of ``--jobs N`` share one.

    Parameters
    ----------
    threads : int or None
        torch threads of every forked worker (see :class:`~dmbp_onnx.audit.runner.Runner`).
    """

    def __init__(self, threads: int | None) -> None:
        self.threads = threads
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._stderr = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dmbp_onnx.audit.zygote", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                env=child_env(threads),
            )
        except BaseException:
            ours.close()
            self._stderr.close()
            raise
        finally:
            theirs.close()
        self._socket = ours
        self._send_lock, self._fork_lock, self._state = threading.Lock(), threading.Lock(), threading.Condition()
        self._forked: queue.Queue = queue.Queue()
        self._exits: dict[int, int | None] = {}
        self._next_id, self._gone = 0, False
        threading.Thread(target=self._read, name="audit-zygote", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self._socket.recv(_MESSAGE_BYTES)
                message = json.loads(data) if data else None
            except (OSError, ValueError):
                message = None
            if message is None:
                break
            if "forked" in message:
                self._forked.put((message["forked"], message["pid"]))
            elif "exit" in message:
                with self._state:
                    self._exits[message["exit"]] = message["code"]
                    self._state.notify_all()
        with self._state:
            self._gone = True
            self._state.notify_all()
        self._forked.put(None)

    def _send(self, message: dict, fds: tuple[int, ...] = ()) -> None:
        with self._send_lock:
            socket.send_fds(self._socket, [json.dumps(message).encode()], list(fds))

    def _death(self) -> str:
        code, last = last_words(self.process, self._stderr)
        return f"the worker fork server ended with exit code {code}" + (f"; its last message: {last}" if last else "")

    @property
    def alive(self) -> bool:
        """Whether workers can still be forked (the server has not ended)."""
        return not self._gone

    def fork(self, stderr: int, timeout: float) -> ForkedProcess:
        """A new worker writing its stderr to the file descriptor ``stderr``.

        Waits for the server's imports on the first call (up to ``timeout`` seconds; not part of any
        model's budget).

        Raises
        ------
        ZygoteGone
            When the server has ended or did not answer in time (it is then killed).
        """
        if self._gone:
            raise ZygoteGone(self._death())
        jobs_read, jobs_write = os.pipe()
        events_read, events_write = os.pipe()
        try:
            with self._fork_lock:
                self._next_id += 1
                ident = self._next_id
                try:
                    self._send({"fork": ident}, (jobs_read, events_write, stderr))
                except OSError:
                    raise ZygoteGone(self._death()) from None
                try:
                    answer = self._forked.get(timeout=max(timeout, 0.0))
                except queue.Empty:
                    self.process.kill()
                    raise ZygoteGone(f"the worker fork server did not start within {timeout:g} s") from None
                if answer is None:
                    raise ZygoteGone(self._death())
        except BaseException:
            os.close(jobs_write), os.close(events_read)
            raise
        finally:
            os.close(jobs_read), os.close(events_write)
        stdin = open(jobs_write, "w", encoding="utf-8")
        stdout = open(events_read, encoding="utf-8")
        return ForkedProcess(self, answer[0], answer[1], stdin, stdout)

    def _kill(self, ident: int, pid: int) -> None:
        if not self._gone:
            try:
                self._send({"kill": ident})
                return
            except OSError:
                pass
        with self._state:
            ended = ident in self._exits
        if not ended:  # the server died first: its workers are orphans, killed by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def _wait(self, ident: int, timeout: float | None) -> int | None:
        with self._state:
            if not self._state.wait_for(lambda: ident in self._exits or self._gone, timeout):
                raise subprocess.TimeoutExpired(f"audit worker {ident}", timeout or 0.0)
            return self._exits.get(ident)

    def close(self) -> None:
        """End the server (it kills any worker still running) and wait for it.

        A server whose workers have all ended is killed at once: it may still be importing (an audit
        that needed no worker), and it has nothing left to clean up.
        """
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._state:
            idle = all(ident in self._exits for ident in range(1, self._next_id + 1))
        if idle:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._socket.close()
        self._stderr.close()

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def start(threads: int | None) -> Zygote | None:
    """A :class:`Zygote` for ``threads`` torch threads, or None where forking is not supported."""
    return Zygote(threads) if SUPPORTED else None


# ---- the server process ---------------------------------------------------------------------------


def _send(control: socket.socket, message: dict) -> None:
    try:
        control.send(json.dumps(message).encode())
    except OSError:
        pass  # the driver is gone; the loop sees it


def _become_worker(fds: list[int], closing: list[int]) -> None:
    """In a forked child: take ``fds`` as stdin, stdout, stderr and serve as a worker; never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in closing:
            os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in set(fds) - {0, 1, 2}:
            os.close(fd)
        from dmbp_onnx.audit import worker

        worker.main()  # exits the process itself
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _reap(children: dict[int, int], control: socket.socket) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        ident = children.pop(pid, None)
        if ident is not None:
            _send(control, {"exit": ident, "code": os.waitstatus_to_exitcode(status)})


def serve(control: socket.socket) -> None:
    """Fork workers on request until the driver's end of ``control`` closes, then kill those left."""
    children: dict[int, int] = {}  # pid -> ID, until reaped
    by_id: dict[int, int] = {}
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False), os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes select through the pipe
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    while True:
        readable, _, _ = select.select([control, wake_read], [], [])
        if wake_read in readable:
            while True:
                try:
                    if not os.read(wake_read, 512):
                        break
                except BlockingIOError:
                    break
            _reap(children, control)
        if control not in readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(control, _MESSAGE_BYTES, 3)
        except OSError:
            data, fds = b"", []
        if not data:
            for fd in fds:
                os.close(fd)
            break
        message = json.loads(data)
        if "fork" in message and len(fds) == 3:
            sys.stdout.flush(), sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _become_worker(fds, [control.fileno(), wake_read, wake_write])
            children[pid], by_id[message["fork"]] = message["fork"], pid
            _send(control, {"forked": message["fork"], "pid": pid})
        elif "kill" in message and by_id.get(message["kill"]) in children:
            os.kill(by_id[message["kill"]], signal.SIGKILL)
        for fd in fds:
            os.close(fd)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    for pid in children:
        os.waitpid(pid, 0)


def main() -> None:
    """Entry point: ``python -m dmbp_onnx.audit.zygote FD``."""
    control = socket.socket(fileno=int(sys.argv[1]))
    from dmbp_onnx.audit.worker import preload

    preload(runtime=False)
    serve(control)
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()

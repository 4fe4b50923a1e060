"""The job's ``index.jsonl``: one strict-JSON row per image, appended once, and atomic file writes.

Rows are appended by the driver alone (never by workers), flushed and fsynced once per batch
of rows (an fsync takes milliseconds: once per row it cost the in-process loop a tenth of its
time), so the index is the single record of what is done. A crash can leave at most a
partial last line; :class:`Index` drops it on opening, before appending anything.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from dmbp_onnx import jsonio

INDEX_NAME = "index.jsonl"


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Have ``write`` fill a temporary file next to ``path``, then move it into place (``os.replace``).

    Readers never see a partial file: ``path`` is either absent, the old file or the whole new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


class Index:
    """An append-only JSONL index of finished images, keyed by their work key.

    Parameters
    ----------
    path : pathlib.Path
        The ``index.jsonl`` file (created when missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: set[str] = set()
        self._repair_and_read()
        self._handle = open(self.path, "a", encoding="utf-8")

    def _repair_and_read(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) != len(data):  # a crash mid-append: drop the partial row
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
        for line in complete.decode("utf-8").splitlines():
            try:
                row = jsonio.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "key" in row:
                self.done.add(row["key"])

    def __contains__(self, key: str) -> bool:
        return key in self.done

    def append(self, row: dict[str, Any]) -> bool:
        """Append ``row`` unless its key is already recorded; returns whether it was written."""
        return self.extend([row])[0]

    def extend(self, rows: list[dict[str, Any]]) -> list[bool]:
        """Append each row whose key is not yet recorded (nor repeated earlier in ``rows``), then
        flush and fsync once; returns, per row, whether it was written."""
        written = []
        for row in rows:
            new = row["key"] not in self.done
            if new:
                self._handle.write(jsonio.dumps(row) + "\n")
                self.done.add(row["key"])
            written.append(new)
        if any(written):
            self._handle.flush()
            os.fsync(self._handle.fileno())
        return written

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every complete row of an index file."""
    text = Path(path).read_text(encoding="utf-8")
    return [jsonio.loads(line) for line in text.splitlines() if line.strip()]

"""The driver: stream the sources, skip finished work, hand batches to an executor, append the rows.

An executor is anything with ``map(batches) -> iterator of row lists`` (one list per batch,
in any order): :class:`LocalExecutor` runs :class:`~dmbp_onnx.jobs.job.ExplainJob` in this
process; :class:`~dmbp_onnx.jobs.ray_executor.RayExecutor` runs it in Ray actors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

from tqdm import tqdm

from dmbp_onnx.errors import ModelLoadError

from dmbp_onnx.jobs.index import INDEX_NAME, Index
from dmbp_onnx.jobs.job import ExplainJob, Record, Row
from dmbp_onnx.jobs.sources import Source, count_sources, iter_sources
from dmbp_onnx.jobs.spec import JobSpec, file_sha256, work_key


class Executor(Protocol):
    """Runs the explain job on batches of records."""

    def map(self, batches: Iterable[list[Record]]) -> Iterator[list[Row]]:
        """One list of rows per batch."""


class LocalExecutor:
    """The explain job in this process, one batch after the other."""

    def __init__(self, spec: JobSpec) -> None:
        self.job = ExplainJob(spec)

    def map(self, batches: Iterable[list[Record]]) -> Iterator[list[Row]]:
        """One list of rows per batch, in order."""
        for batch in batches:
            yield self.job.run(batch)


@dataclass
class JobSummary:
    """What one run of a job did.

    Attributes
    ----------
    total : int
        Images named by the sources.
    ok, failed : int
        Rows written by this run, by status.
    skipped : int
        Images already in the index (or repeating an image of this run).
    wall_s : float
        Wall-clock seconds of the run.
    index : pathlib.Path
        The index file.
    """

    total: int
    ok: int
    failed: int
    skipped: int
    wall_s: float
    index: Path

    @property
    def images_per_s(self) -> float:
        """Images explained (ok or failed) per second of wall time."""
        return (self.ok + self.failed) / self.wall_s if self.wall_s > 0 else 0.0

    def line(self) -> str:
        """One human-readable line."""
        return (f"{self.ok} explained, {self.failed} failed, {self.skipped} already done, of {self.total} "
                f"images in {self.wall_s:.1f} s ({self.images_per_s:.2f} images/s); index {self.index}")


def _record(source: Source, model_sha: str, settings: dict, target: str) -> Record:
    """The record of one source; an unreadable file is keyed by its path (it gets a failed row)."""
    try:
        image_sha = file_sha256(source.path)
    except OSError:
        image_sha = None
    identity = image_sha or f"unreadable:{source.path}"
    return {"path": source.path, "target": source.target, "image_sha256": image_sha,
            "key": work_key(identity, model_sha, settings, source.target or target)}


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while batch := list(islice(iterator, size)):
        yield batch


def run_job(spec: JobSpec, inputs: Sequence[str | Path], executor: Executor | None = None,
            limit: int | None = None, progress: bool = False) -> JobSummary:
    """Explain every image named by ``inputs`` not yet in ``spec.out/index.jsonl``; append their rows.

    Parameters
    ----------
    spec : JobSpec
        The job.
    inputs : sequence of str or pathlib.Path
        Files, folders, globs and manifests (:func:`~dmbp_onnx.jobs.sources.iter_sources`).
    executor : Executor, optional
        Default: :class:`LocalExecutor` (in-process).
    limit : int, optional
        Explain at most this many new images, then stop (the rest are left for a rerun).
    progress : bool
        Show a progress bar (images/s and ETA) on stderr.

    Raises
    ------
    DmbpOnnxError
        Bad inputs (a missing path, an empty folder) or a model that cannot be read or loaded
        (:class:`~dmbp_onnx.errors.ModelLoadError`).
    """
    started = time.perf_counter()
    try:
        model_sha = file_sha256(spec.model)
    except OSError as exc:
        raise ModelLoadError(f"cannot read the model '{spec.model}': {exc.strerror or exc}") from None
    settings = spec.settings()
    total = count_sources(inputs)
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    with Index(Path(spec.out) / INDEX_NAME) as index:
        bar = tqdm(total=total, unit="image", desc="explain", disable=not progress, smoothing=0.1)
        scheduled: set[str] = set()

        def pending() -> Iterator[Record]:
            for source in iter_sources(inputs):
                record = _record(source, model_sha, settings, spec.target)
                if record["key"] in index or record["key"] in scheduled:
                    counts["skipped"] += 1
                    bar.total -= 1
                    bar.refresh()
                    continue
                scheduled.add(record["key"])
                yield record

        work = _batches(islice(pending(), limit), spec.batch_size)
        try:
            for rows in (executor or LocalExecutor(spec)).map(work):
                for row, written in zip(rows, index.extend(rows)):
                    counts[row["status"]] += written
                bar.update(len(rows))
        finally:
            bar.close()
    return JobSummary(total, counts["ok"], counts["failed"], counts["skipped"],
                      time.perf_counter() - started, index.path)


__all__ = ["Executor", "JobSummary", "LocalExecutor", "run_job"]

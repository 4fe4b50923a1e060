"""The explain job on a Ray cluster: Ray Data ``map_batches`` over actors that each keep one twin.

Needs the optional extra (``pip install -e '.[ray]'``); only ``--ray`` imports this module.
Each actor builds :class:`~dmbp_onnx.jobs.job.ExplainJob` once and runs it on
the batches Ray Data hands it; the rows come back to the driver, which alone appends them to
the index. Actors are restarted when their process dies and their unfinished batches are
retried (Ray Data's actor pools default to ``max_restarts=-1`` and ``max_task_retries=-1``;
a test kills an actor mid-run): a retried batch rewrites its files
atomically with the same content, and the index keeps its first row per key, so every
image is recorded exactly once. Actors write the maps themselves, so on a multi-node
cluster ``--out`` must be a folder every node sees (a shared file system).
"""

from __future__ import annotations

import json
from itertools import islice
from typing import Any, Iterable, Iterator

import numpy as np

from dmbp_onnx import jsonio
from dmbp_onnx.errors import InputError
from dmbp_onnx.jobs.job import ExplainJob, Record, Row
from dmbp_onnx.jobs.spec import JobSpec

#: Records per Ray dataset: the driver holds at most this many (small) records at a time.
WINDOW = 10_000


def _ray():
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs the optional Ray extra: pip install 'dmbp-onnx[ray]'") from None
    return ray


class ExplainActor:
    """A Ray Data actor: the twin built once, then batches of records -> batches of rows."""

    def __init__(self, spec: dict[str, Any]) -> None:
        import ray
        import torch

        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        torch.set_num_threads(max(1, int(cpus)))
        self.job = ExplainJob(JobSpec(**spec))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"record": JSON strings}`` -> ``{"row": JSON strings}``, one row per record."""
        rows = self.job.run([json.loads(str(text)) for text in batch["record"]])
        return {"row": np.array([jsonio.dumps(row) for row in rows], dtype=object)}


class RayExecutor:
    """Runs the explain job in ``actors`` Ray actors (Ray Data ``map_batches``).

    Parameters
    ----------
    spec : JobSpec
        The job.
    actors : int
        Actors, each with its own twin.
    address : str, optional
        A running cluster (``ray://host:10001`` or ``host:6379``); default ``RAY_ADDRESS``, else a
        local cluster. Ignored when Ray is already initialised.
    cpus_per_actor : float
        CPUs each actor reserves (also its torch thread count).
    """

    def __init__(self, spec: JobSpec, actors: int = 1, address: str | None = None,
                 cpus_per_actor: float = 1.0) -> None:
        if actors < 1:
            raise InputError(f"--actors must be at least 1, got {actors}")
        self.ray = _ray()
        self.spec, self.actors, self.cpus_per_actor = spec, actors, cpus_per_actor
        if not self.ray.is_initialized():
            self.ray.init(address=address, log_to_driver=False)

    def _dataset(self, records: list[Record]):
        import ray.data

        items = [{"record": json.dumps(record)} for record in records]
        blocks = -(-len(items) // self.spec.batch_size)
        return ray.data.from_items(items, override_num_blocks=blocks).map_batches(
            ExplainActor,
            fn_constructor_kwargs={"spec": self.spec.to_dict()},
            batch_size=self.spec.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            num_cpus=self.cpus_per_actor,
        )

    def map(self, batches: Iterable[list[Record]]) -> Iterator[list[Row]]:
        """Rows as the actors finish them, one list per block, a window of records at a time."""
        records = (record for batch in batches for record in batch)
        while window := list(islice(records, WINDOW)):
            for block in self._dataset(window).iter_batches(batch_size=None, batch_format="numpy"):
                yield [jsonio.loads(str(text)) for text in block["row"]]

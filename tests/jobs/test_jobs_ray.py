"""Dataset explain jobs on a local Ray cluster: same maps as in-process, exactly once, survives a kill."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from job_images import make_spec, write_images

from dmbp_onnx.jobs.index import INDEX_NAME, read_rows
from dmbp_onnx.jobs.run import run_job

ray = pytest.importorskip("ray", reason="the optional Ray extra is not installed")
pytest.importorskip("ray.data", reason="Ray Data is not installed")

from dmbp_onnx.jobs.ray_executor import RayExecutor  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    """A local two-CPU Ray cluster for the module."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 2**20, log_to_driver=False)
    yield
    ray.shutdown()


def _check_exactly_once(out: Path, count: int) -> list[dict]:
    rows = read_rows(out / INDEX_NAME)
    assert len(rows) == count and len({r["image"] for r in rows}) == count
    assert all(r["status"] == "ok" for r in rows)
    assert len(list((out / "maps").glob("*.npz"))) == count
    return rows


def test_two_actors_match_the_in_process_run(cluster, tmp_path):
    folder = tmp_path / "images"
    write_images(folder, 48)
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_job(make_spec(local), [folder])
    spec = make_spec(remote)
    summary = run_job(spec, [folder], executor=RayExecutor(spec, actors=2))
    assert (summary.ok, summary.failed) == (48, 0)
    rows = _check_exactly_once(remote, 48)
    for row in rows:
        name = row["files"]["gradxinput_arrays"]
        with np.load(local / name) as a, np.load(remote / name) as b:
            np.testing.assert_allclose(a["signed"], b["signed"], rtol=1e-5, atol=1e-6)
    assert run_job(spec, [folder], executor=RayExecutor(spec, actors=2)).skipped == 48


def _actor_pids() -> list[int]:
    """PIDs of the live explain actors (Ray titles their processes after the actor class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"ExplainActor" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def test_a_killed_actor_loses_no_image_and_repeats_none(cluster, tmp_path):
    folder = tmp_path / "images"
    write_images(folder, 40, seed=2)
    out = tmp_path / "out"
    spec = make_spec(out, methods=("dmbp",), iterations=1, batch_size=2)
    killed: list[int] = []

    def kill_one_actor_mid_run() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            index = out / INDEX_NAME
            pids = _actor_pids()
            if index.exists() and len(index.read_text().splitlines()) >= 4 and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_actor_mid_run, daemon=True)
    killer.start()
    summary = run_job(spec, [folder], executor=RayExecutor(spec, actors=2))
    killer.join(timeout=5)
    assert killed, "no actor was killed while the job ran"
    assert (summary.ok, summary.failed) == (40, 0)
    _check_exactly_once(out, 40)

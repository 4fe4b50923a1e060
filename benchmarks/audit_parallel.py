"""Audit speed-up from ``--jobs``: the same models audited sequentially and in parallel, side by side.

The 19 small models of the test suite: every model file of the test fixtures
(``tests/fixtures/foreign``: the exporters' CNNs and MLPs), the demo model, and the eight nets of
``tests/models/test_torch_exports.py`` (VGG-ish, residual, bottleneck, concat branches, depthwise,
dilated + upsample, 1-D, unfolded BN) exported with the legacy exporter as the tests do. They are
audited by the CLI (``dmbp-onnx audit``, DMBP smoke check on) with ``--jobs 1`` and ``--jobs N``,
alternately for ``--rounds`` rounds so that drifts of a shared machine hit both; the figure is the
ratio of the medians of the wall times. Each run also records its CPU time (the CLI and its
workers), so ``cpu_s / wall_s`` says how many of the cores it kept busy, and the load average
before it. The JSON reports of the two runs must be equal once their timings are removed (the test
suite checks this on four models; here on all of them).

Only the models' own work can run in parallel: the CLI's start, the fork server's imports
(:mod:`dmbp_onnx.audit.zygote`: torch, onnx, the twin), a worker's start and the CLI's exit come
first or last whatever ``--jobs``. Each round also times that fixed part alone: an audit of one tiny
model (``FIXED_MODEL``, 0.04 s of checks). The ``ceiling`` is the speed-up if everything else of the
``--jobs 1`` run were split perfectly over ``--jobs`` workers: ``wall / (fixed + (wall - fixed) / jobs)``
(medians).

Writes ``benchmarks/results/audit_parallel.{json,md}``.
Run: ``python benchmarks/audit_parallel.py [--jobs 2] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FOLDERS = (ROOT / "tests" / "fixtures" / "foreign", ROOT / "dmbp_onnx" / "data")
EXPORTS = "tests/models/test_torch_exports.py (legacy exports)"
FIXED_MODEL = ROOT / "tests" / "fixtures" / "foreign" / "sklearn_mlp_nozipmap.onnx"


def export_nets(folder: Path) -> Path:
    """The nets of ``tests/models/test_torch_exports.py``, exported as its tests do, in ``folder``."""
    import onnx

    sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "models")]
    from test_torch_exports import NETS, ExportCache

    folder.mkdir()
    cache = ExportCache()
    for name in NETS:
        onnx.save(cache.onnx(name, "legacy"), str(folder / f"{name}.onnx"))
    return folder


def without_timings(report: dict) -> dict:
    """The JSON report without its start time and durations."""
    report = dict(report)
    report.pop("started", None), report.pop("duration_s", None)
    for model in report["models"]:
        model.pop("duration_s", None)
        for check in model["checks"]:
            check.pop("duration_s", None)
    return report


def audit(jobs: int, folders: list[Path], scratch: Path) -> tuple[float, float, dict]:
    """Wall and CPU seconds (the CLI and its workers) of one CLI audit of ``folders`` with
    ``--jobs jobs``, and its report."""
    out = scratch / f"jobs{jobs}-{len(folders)}.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dmbp_onnx.cli", "audit", *map(str, folders), "--jobs", str(jobs),
                    "--json", str(out)], check=False, stdout=subprocess.DEVNULL, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(out.read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "audit_parallel.json")
    args = parser.parse_args()
    walls: dict[int, list[float]] = {1: [], args.jobs: []}
    cpus: dict[int, list[float]] = {1: [], args.jobs: []}
    loads: dict[int, list[float]] = {1: [], args.jobs: []}
    reports, models_s, fixed_s = {}, [], []
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        folders = [*FOLDERS, export_nets(Path(scratch) / "torch_exports")]
        for _ in range(args.rounds):
            fixed_s.append(round(audit(1, [FIXED_MODEL], Path(scratch))[0], 2))
            print(f"fixed part (one tiny model): {fixed_s[-1]:.1f} s wall", flush=True)
            for jobs in walls:
                loads[jobs].append(round(os.getloadavg()[0], 2))
                wall, cpu, report = audit(jobs, folders, Path(scratch))
                walls[jobs].append(round(wall, 2))
                cpus[jobs].append(round(cpu, 2))
                if jobs == 1:  # the models' own time (checks), worker start-up excluded
                    models_s.append(round(sum(m["duration_s"] for m in report["models"]), 2))
                reports[jobs] = without_timings(report)
                print(f"--jobs {jobs}: {wall:.1f} s wall, {cpu:.1f} s CPU (load {loads[jobs][-1]})", flush=True)
    same = reports[1] == reports[args.jobs]
    medians = {jobs: statistics.median(w) for jobs, w in walls.items()}
    busy = {jobs: statistics.median(c / w for c, w in zip(cpus[jobs], walls[jobs])) for jobs in walls}
    models = reports[1]["models"]
    fixed = statistics.median(fixed_s)  # the CLI's start, the imports, a worker's start, the exit
    ceiling = medians[1] / (fixed + (medians[1] - fixed) / args.jobs)
    result = {
        "models": len(models),
        "model_files": [str(Path(m["path"]).name) for m in models],
        "models_s_sequential": models_s,
        "cpus": os.cpu_count(),
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "load_average_before_each_run": {str(k): v for k, v in loads.items()},
        "wall_s": {str(k): v for k, v in walls.items()},
        "cpu_s": {str(k): v for k, v in cpus.items()},
        "cores_busy": {str(k): round(v, 2) for k, v in busy.items()},
        "speed_up": round(medians[1] / medians[args.jobs], 3),
        "fixed_s": fixed_s,
        "ceiling": round(ceiling, 3),
        "reports_equal": same,
        "machine": platform.machine(),
    }
    args.out.write_text(json.dumps(result, indent=1))
    where = ", ".join(str(f.relative_to(ROOT)) for f in FOLDERS) + f", {EXPORTS}"
    args.out.with_suffix(".md").write_text(
        f"# Audit in parallel (benchmarks/audit_parallel.py)\n\n"
        f"{result['models']} models ({where}), DMBP smoke check on, "
        f"{result['cpus']} CPUs, load average {result['load_average'][0]} at the start and "
        f"{result['load_average'][1]} at the end; {args.rounds} alternating rounds.\n\n"
        f"| jobs | wall s (each round) | median | CPU s (each round) | cores busy (CPU / wall, median) "
        f"| load average before each run |\n|---|---|---|---|---|---|\n"
        + "".join(f"| {k} | {', '.join(map(str, v))} | {medians[k]:.1f} | {', '.join(map(str, cpus[k]))} "
                  f"| {busy[k]:.2f} | {', '.join(map(str, loads[k]))} |\n" for k, v in walls.items())
        + f"\nSpeed-up of `--jobs {args.jobs}` over `--jobs 1`: **{result['speed_up']:.2f}x**; JSON reports "
        f"equal without timings: {same}. The models' own checks took {', '.join(map(str, models_s))} s of "
        f"each `--jobs 1` run (worker start-up excluded). Auditing one tiny model took "
        f"{', '.join(map(str, fixed_s))} s (median {fixed:.1f} s): the part no `--jobs` shortens (the CLI's "
        f"start, the workers' fork server importing torch, onnx and the twin once per run, a forked worker "
        f"importing onnxruntime, the exit). Splitting all the rest perfectly over {args.jobs} workers would "
        f"give at most **{ceiling:.2f}x**.\n"
    )
    print(f"speed-up {result['speed_up']:.2f}x (ceiling {ceiling:.2f}x), reports equal: {same}", flush=True)


if __name__ == "__main__":
    main()

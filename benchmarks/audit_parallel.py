"""Audit speed-up from ``--jobs``: the same models audited sequentially and in parallel, side by side.

Every model file of the test fixtures (``tests/fixtures/foreign``, the exporters' CNNs and MLPs) and
the demo model, audited by the CLI (``dmbp-onnx audit``, DMBP smoke check on) with ``--jobs 1`` and
``--jobs N``, alternately for ``--rounds`` rounds so that drifts of a shared machine hit both; the
figure is the ratio of the medians of the wall times. The JSON reports of the two runs must be equal
once their timings are removed (the test suite checks this on four models; here on all of them).

Writes ``benchmarks/results/audit_parallel.{json,md}``.
Run: ``python benchmarks/audit_parallel.py [--jobs 2] [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FOLDERS = (ROOT / "tests" / "fixtures" / "foreign", ROOT / "dmbp_onnx" / "data")


def without_timings(report: dict) -> dict:
    """The JSON report without its start time and durations."""
    report = dict(report)
    report.pop("started", None), report.pop("duration_s", None)
    for model in report["models"]:
        model.pop("duration_s", None)
        for check in model["checks"]:
            check.pop("duration_s", None)
    return report


def audit(jobs: int, folder: Path) -> tuple[float, dict]:
    """Wall seconds of one CLI audit of :data:`FOLDERS` with ``--jobs jobs``, and its report."""
    out = folder / f"jobs{jobs}.json"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dmbp_onnx.cli", "audit", *map(str, FOLDERS), "--jobs", str(jobs),
                    "--json", str(out)], check=False, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start, json.loads(out.read_text(encoding="utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "audit_parallel.json")
    args = parser.parse_args()
    walls: dict[int, list[float]] = {1: [], args.jobs: []}
    reports = {}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for jobs in walls:
                wall, report = audit(jobs, Path(folder))
                walls[jobs].append(round(wall, 2))
                reports[jobs] = without_timings(report)
                print(f"--jobs {jobs}: {wall:.1f} s", flush=True)
    same = reports[1] == reports[args.jobs]
    medians = {jobs: statistics.median(w) for jobs, w in walls.items()}
    result = {
        "models": len(reports[1]["models"]),
        "cpus": os.cpu_count(),
        "load_average": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "wall_s": {str(k): v for k, v in walls.items()},
        "speed_up": round(medians[1] / medians[args.jobs], 3),
        "reports_equal": same,
        "machine": platform.machine(),
    }
    args.out.write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(
        f"# Audit in parallel (benchmarks/audit_parallel.py)\n\n"
        f"{result['models']} models ({', '.join(str(f.relative_to(ROOT)) for f in FOLDERS)}), DMBP smoke check on, "
        f"{result['cpus']} CPUs, load average {result['load_average'][0]} at the start and "
        f"{result['load_average'][1]} at the end; {args.rounds} alternating rounds.\n\n"
        f"| jobs | wall s (each round) | median |\n|---|---|---|\n"
        + "".join(f"| {k} | {', '.join(map(str, v))} | {medians[k]:.1f} |\n" for k, v in walls.items())
        + f"\nSpeed-up of `--jobs {args.jobs}` over `--jobs 1`: **{result['speed_up']:.2f}x**; JSON reports "
        f"equal without timings: {same}.\n"
    )
    print(f"speed-up {result['speed_up']:.2f}x, reports equal: {same}", flush=True)


if __name__ == "__main__":
    main()

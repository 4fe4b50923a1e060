"""Dataset-job throughput on CPU: the in-process loop against Ray with 1 and 2 actors, in one run.

The same job (DMBP with its default settings, arrays only, batches of 8, the shipped demo model
at 64x64) explains the same images three times into fresh output folders:

* ``in-process-Nt``: :class:`~dmbp_onnx.jobs.run.LocalExecutor` with torch at its default thread
  count N, and ``in-process-1t`` with one thread;
* ``ray-1``, ``ray-2``: :class:`~dmbp_onnx.jobs.ray_executor.RayExecutor` with 1 and 2 actors
  on a local Ray cluster of ``--cpus`` CPUs (each actor reserves one CPU and runs one torch thread).

Per executor: ``wall_s`` of the whole ``run_job`` (twin build, first-call warm-up and, for Ray,
actor start-up included) and ``images_per_s`` from it; and ``marginal_images_per_s``, the extra
images over the extra time against a run on the first 8 images (start-up excluded; Ray Data
hands rows back in blocks, so per-row arrival times would not tell). Each executor runs
``--rounds`` times, alternating with its pair (``in-process-Nt`` / ``1t``, then ``ray-1`` / ``ray-2``) so
that drifts of a shared machine hit both; the figures are the medians, and the load average is
recorded before every run: on a shared machine the figures are only indicative.

Writes ``benchmarks/results/scale_out.json`` and ``scale_out.md``.
Run: ``python benchmarks/scale_out.py [--images N] [--rounds N] [--cpus N] [--method NAME]`` (needs the
``ray`` extra).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from dmbp_onnx import jsonio
from dmbp_onnx.explain.defaults import default_model
from dmbp_onnx.jobs.run import LocalExecutor, run_job
from dmbp_onnx.jobs.spec import JobSpec

RESULTS = Path(__file__).parent / "results"


def _images(folder: Path, count: int) -> None:
    """``count`` distinct 64x64 pictures: a bright disc at a random place on noise."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    for k in range(count):
        picture = rng.integers(0, 80, (64, 64, 3)).astype(np.uint8)
        cy, cx, r = rng.integers(16, 48, 2).tolist() + [int(rng.integers(6, 14))]
        picture[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(150, 256, 3).astype(np.uint8)
        Image.fromarray(picture).save(folder / f"img{k:04d}.png")


def _run(make_executor, spec: JobSpec, inputs: list[Path]) -> tuple[float, int]:
    """Seconds of one whole ``run_job`` (executor start-up included) and the images it explained."""
    start = time.perf_counter()
    summary = run_job(spec, inputs, executor=make_executor(spec))
    return time.perf_counter() - start, summary.ok + summary.failed


def _measure(label: str, make_executor, spec, folder: Path, small: list[Path]) -> dict:
    """Wall-clock images/s of a full run, and the marginal rate against a run on the few ``small`` images."""
    load = os.getloadavg()[0]
    small_s, small_n = _run(make_executor, spec(f"{label}-small"), small)
    wall, done = _run(make_executor, spec(label), [folder])
    marginal = (done - small_n) / (wall - small_s) if wall > small_s else None
    print(f"{label:>14}: {done} images, {wall:.1f} s, {done / wall:.2f} images/s; "
          f"{small_n} images {small_s:.1f} s; marginal {marginal if marginal is None else round(marginal, 2)} images/s"
          f" (load {load:.2f})", flush=True)
    return {"executor": label, "images": done, "wall_s": wall, "images_per_s": done / wall,
            "small_images": small_n, "small_wall_s": small_s, "marginal_images_per_s": marginal, "load": load}


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def main() -> None:
    """Run the executors on the same images, in alternating rounds, and write the results."""
    import ray
    import torch

    from dmbp_onnx.jobs.ray_executor import RayExecutor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="images per run (default 256)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each executor, alternating (default 3)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (default 2)")
    parser.add_argument("--method", default="dmbp", help="method (default dmbp, its default settings)")
    args = parser.parse_args()

    load_start = os.getloadavg()
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        _images(folder, args.images)

        small = sorted(folder.iterdir())[:8]
        count = iter(range(10**6))

        def spec(label: str) -> JobSpec:  # a fresh output folder for every run
            return JobSpec(model=str(default_model()), out=str(Path(scratch) / f"{label}-{next(count)}"),
                           methods=(args.method,), batch_size=8, device="cpu", figures=False)

        threads = torch.get_num_threads()
        for _ in range(args.rounds):
            for n in (threads, 1):
                torch.set_num_threads(n)
                label = f"in-process-{n}t"
                runs.setdefault(label, []).append(_measure(label, LocalExecutor, spec, folder, small))
        torch.set_num_threads(threads)
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        try:
            for _ in range(args.rounds):
                for actors in (1, 2):
                    label = f"ray-{actors}"
                    runs.setdefault(label, []).append(_measure(
                        label, lambda s, n=actors: RayExecutor(s, actors=n), spec, folder, small))
        finally:
            ray.shutdown()

    results = [{"executor": label, "images": rs[0]["images"], "wall_s": _median(rs, "wall_s"),
                "images_per_s": _median(rs, "images_per_s"),
                "marginal_images_per_s": _median(rs, "marginal_images_per_s"), "runs": rs}
               for label, rs in runs.items()]
    by_label = {r["executor"]: r for r in results}
    one, two = by_label["ray-1"]["marginal_images_per_s"], by_label["ray-2"]["marginal_images_per_s"]
    ratio = two / one if one and two else None
    data = {"model": "demo (64x64)", "method": args.method, "batch_size": 8, "images": args.images,
            "rounds": args.rounds, "ray_cpus": args.cpus, "ray_version": ray.__version__,
            "torch_threads_default": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
            "ray_2_over_ray_1_marginal": ratio, "results": results}
    RESULTS.mkdir(exist_ok=True)
    jsonio.write(data, RESULTS / "scale_out.json")
    lines = [f"# Dataset-job throughput ({args.method}, demo model, {args.images} images, CPU)", "",
             f"Measured on a shared {os.cpu_count()}-core machine (load average {load_start[0]:.1f} at the "
             f"start, {data['loadavg_end'][0]:.1f} at the end); medians of {args.rounds} alternating rounds; "
             "indicative only.", "",
             "| executor | wall s | images/s (wall, start-up included) | images/s (marginal) "
             "| marginal, each round | load average before each round |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        marginal = "n/a" if r["marginal_images_per_s"] is None else f"{r['marginal_images_per_s']:.2f}"
        each = ", ".join("n/a" if x["marginal_images_per_s"] is None else f"{x['marginal_images_per_s']:.1f}"
                         for x in r["runs"])
        loads = ", ".join(f"{x['load']:.2f}" for x in r["runs"])
        lines.append(f"| {r['executor']} | {r['wall_s']:.1f} | {r['images_per_s']:.2f} | {marginal} | {each} "
                     f"| {loads} |")
    if ratio is not None:
        lines += ["", f"2 actors over 1 actor (marginal images/s): **{ratio:.2f}x**."]
    (RESULTS / "scale_out.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

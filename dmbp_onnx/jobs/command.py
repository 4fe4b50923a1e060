"""The dataset options of ``dmbp-onnx explain`` and the switch to the dataset job.

``explain`` runs as a dataset job (streamed, resumable, ``index.jsonl``) when an input is a
manifest or a glob, or any option below is given; otherwise it keeps its small-run
behaviour (``report.json`` and ``report.html`` for all images).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dmbp_onnx.jobs.sources import is_glob, is_manifest

_JOB_FLAGS = ("dataset", "no_figures", "limit", "ray", "ray_address", "actors")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the dataset options on the ``explain`` parser."""
    group = parser.add_argument_group(
        "dataset jobs", "streamed and resumable: one row per image in OUT/index.jsonl, arrays in OUT/maps/; "
        "a rerun skips finished images. Used when an input is a manifest (.txt/.csv) or a glob, "
        "or any of these options is given.")
    group.add_argument("--dataset", action="store_true", help="run as a dataset job")
    group.add_argument("--no-figures", action="store_true", help="write only the arrays, no PNG figures")
    group.add_argument("--limit", type=int, metavar="N", help="explain at most N new images, then stop")
    group.add_argument("--ray", action="store_true",
                       help="run on Ray actors (needs pip install 'dmbp-onnx[ray]'; RAY_ADDRESS honoured)")
    group.add_argument("--ray-address", metavar="ADDRESS", help="a running Ray cluster (implies --ray)")
    group.add_argument("--actors", type=int, metavar="N", help="Ray actors, each with its own twin (default 1)")


def wants_job(args: argparse.Namespace) -> bool:
    """Whether ``args`` ask for the dataset job."""
    flagged = any(getattr(args, name) not in (None, False) for name in _JOB_FLAGS)
    return flagged or any(is_manifest(p) or is_glob(p) for p in args.images)


def run_dataset(args: argparse.Namespace, methods: list[str]) -> int:
    """Run the dataset job of ``args``; 0 when every image was explained, 1 when some failed."""
    from dmbp_onnx.errors import InputError
    from dmbp_onnx.jobs.run import run_job
    from dmbp_onnx.jobs.spec import JobSpec

    if not args.model or not args.images:
        raise InputError("a dataset job needs a model and images (files, folders, globs or a manifest)")
    if args.input_npy:
        raise InputError("--input-npy cannot be combined with a dataset job")
    if args.limit is not None and args.limit < 0:
        raise InputError(f"--limit must be non-negative, got {args.limit}")
    preprocess = {"size": tuple(args.size) if args.size else None,
                  "layout": args.layout.upper() if args.layout else None,
                  "scale": args.scale, "mean": args.mean, "std": args.std}
    spec = JobSpec(model=str(Path(args.model)), out=str(Path(args.out)), methods=tuple(methods),
                   iterations=args.iterations, rule=args.rule, regions=args.regions, target=args.target, box=tuple(args.box) if args.box else None,
                   batch_size=args.batch_size, device=args.device, figures=not args.no_figures,
                   display=args.display, force=args.force, output=args.output,
                   preprocess={k: v for k, v in preprocess.items() if v is not None})
    executor = None
    if args.ray or args.ray_address:
        from dmbp_onnx.jobs.ray_executor import RayExecutor

        executor = RayExecutor(spec, actors=args.actors or 1,
                               address=args.ray_address or os.environ.get("RAY_ADDRESS"))
    elif args.actors is not None:
        raise InputError("--actors applies to Ray jobs; add --ray")
    summary = run_job(spec, args.images, executor=executor, limit=args.limit,
                      progress=not args.quiet and sys.stderr.isatty())
    if not args.quiet:
        print(summary.line())
    return 1 if summary.failed else 0

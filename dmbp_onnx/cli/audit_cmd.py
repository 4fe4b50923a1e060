"""``dmbp-onnx audit MODEL_OR_FOLDER...``: check every model for a CI pipeline.

Exit status: 0 when every check of every model passes (or is skipped), 1 when any
check fails or errors, 2 on a usage error (no models found, bad config or option,
report file not writable).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dmbp_onnx.audit.zygote import Zygote


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``audit`` subcommand."""
    parser = subparsers.add_parser(
        "audit",
        help="check models for CI: load, inspect, validate, DMBP eligibility and a DMBP smoke test",
        description=(
            "For every model (folders: every *.onnx inside, recursively, sorted): load it, inspect "
            "it, validate the twin against onnxruntime on seeded inputs and on <stem>.input.npy "
            "[+ <stem>.expected.npy] or <stem>.npz shipped next to it, check DMBP eligibility and "
            "run a short DMBP whose invariants must hold. Each model runs in a child process "
            "with a time budget. Exit 0 all passed, 1 a check failed, 2 usage error."
        ),
    )
    parser.add_argument("paths", metavar="MODEL_OR_FOLDER", nargs="+", help=".onnx files or folders")
    parser.add_argument("--json", dest="json_path", metavar="FILE", help="write the JSON report to FILE")
    parser.add_argument("--junit", dest="junit_path", metavar="FILE", help="write a JUnit XML report to FILE")
    parser.add_argument("--html", dest="html_path", metavar="FILE",
                        help="write the report as one self-contained HTML page to FILE")
    parser.add_argument("--config", metavar="audit.toml", help="settings file (flags override it)")
    parser.add_argument("--rtol", type=float, help="relative tolerance (default 1e-4)")
    parser.add_argument("--atol", type=float, help="absolute tolerance (default 1e-5)")
    parser.add_argument("--samples", type=int, help="seeded random inputs per model (default 4)")
    parser.add_argument(
        "--explain", action=argparse.BooleanOptionalAction, default=None,
        help="run the DMBP smoke test on eligible models (default on)",
    )  # fmt: skip
    parser.add_argument("--time-budget", dest="time_budget_s", type=float, metavar="S",
                        help="seconds per model, all checks together (default 120)")  # fmt: skip
    parser.add_argument("--max-model-mb", dest="max_model_mb", type=float, metavar="M",
                        help="largest model accepted, in MiB, checked before reading (default 512)")  # fmt: skip
    parser.add_argument("--output", metavar="NAME",
                        help="check every model on this output (only the subgraph it needs is rebuilt; per "
                        "model: the [outputs] table of audit.toml); default the first class-probability output, "
                        "else the first (N, classes) float output, else the first float output")
    parser.add_argument("--shape", dest="shapes", metavar="NAME=DIMS", action="append",
                        help="shape of the seeded random values of input NAME, e.g. x=1x3x320x320 (repeatable; "
                        "a model uses those of the inputs it declares; default: dynamic batch 1, other dynamic "
                        "dimensions 224)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="audit N models at once, each in its own worker process (default 1)")
    parser.add_argument("--ray", action="store_true",
                        help="audit each model as a Ray task (pip install 'dmbp-onnx[ray]'; RAY_ADDRESS honoured)")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    parser.set_defaults(run=run)
    return parser


def _config(args: argparse.Namespace):
    from dmbp_onnx.audit.config import AuditConfig, load_config
    from dmbp_onnx.cli.validate_cmd import parse_shapes

    base = load_config(args.config) if args.config else AuditConfig()
    shapes = parse_shapes(args.shapes) if args.shapes else {}  # parsing imports torch: only when asked
    return base.replace(
        output=args.output,
        shapes={**base.shapes, **shapes} if shapes else None,
        rtol=args.rtol,
        atol=args.atol,
        samples=args.samples,
        explain=args.explain,
        time_budget_s=args.time_budget_s,
        max_model_mb=args.max_model_mb,
    )


def _check_writable(*paths: str | None) -> None:
    from dmbp_onnx.errors import InputError

    for path in paths:
        if path is None:
            continue
        try:
            with open(path, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            raise InputError(f"cannot write the report '{path}': {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    """Audit every model; print one line per model; write the reports; 0 all passed, 1 otherwise.

    The workers' fork server is started first, so that its imports (seconds) overlap finding the models.
    """
    from dmbp_onnx.audit.runner import WORKER_THREADS
    from dmbp_onnx.audit.zygote import start

    zygote = None if args.ray else start(WORKER_THREADS)
    try:
        return _run(args, zygote)
    finally:
        if zygote is not None:
            zygote.close()


def _run(args: argparse.Namespace, zygote: "Zygote | None") -> int:
    from tqdm import tqdm

    from dmbp_onnx.audit.report import build_report, marks_for, model_lines, summary_line, write_json, write_junit
    from dmbp_onnx.audit.parallel import audit_models
    from dmbp_onnx.audit.runner import collect_models

    config = _config(args)
    models = collect_models(args.paths)
    _check_writable(args.json_path, args.junit_path, args.html_path)
    marks = marks_for(sys.stdout.encoding)
    started, start = datetime.now(timezone.utc), time.perf_counter()
    bar = tqdm(total=len(models), desc="audit", unit="model", disable=not sys.stderr.isatty(), file=sys.stderr)

    def show(result) -> None:
        for line in model_lines(result.to_dict(), marks):
            tqdm.write(line, file=sys.stdout)
        sys.stdout.flush()
        bar.update(1)

    try:
        results = audit_models(models, config, on_model=show, jobs=args.jobs, use_ray=args.ray, zygote=zygote)
    finally:
        bar.close()
    report = build_report(results, config, started, time.perf_counter() - start)
    print(summary_line(report))
    if args.json_path:
        write_json(report, args.json_path)
    if args.junit_path:
        write_junit(report, args.junit_path)
    if args.html_path:
        from dmbp_onnx.html import write_audit_html

        write_audit_html(report, args.html_path)
    return 0 if report["ok"] else 1

"""``dmbp-onnx explain``: attribution maps for a model and images (the main job).

With no arguments it explains the shipped demo model on a shipped sample image.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from dmbp_onnx.jobs.command import add_arguments as add_job_arguments
from dmbp_onnx.jobs.command import run_dataset, wants_job
from dmbp_onnx.options import DMBP_RULES, METHOD_CLASSES

#: CLI method names (the registry's keys, torch-free so that ``--help`` needs no torch) and ``all``.
METHOD_NAMES = tuple(METHOD_CLASSES)
METHOD_CHOICES = (*METHOD_NAMES, "all")

EPILOG = """examples:
  dmbp-onnx explain                                  # the shipped demo: writes ./dmbp_out/
  dmbp-onnx explain net.onnx cat.png dogs/ --out maps
  dmbp-onnx explain net.onnx cat.png --target 281 --method all --iterations 100
  dmbp-onnx explain craft.onnx page.png --target 0 --box 40 60 56 120   # map output: channel 0 in a box
  dmbp-onnx explain onet.onnx face.png --output prob1            # a multi-output model: explain 'prob1'
exit codes: 0 done, 1 the twin disagrees with onnxruntime (see --force), 2 bad input or model."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``explain`` subcommand."""
    p = subparsers.add_parser(
        "explain",
        help="explain a model's prediction on images (default: the shipped demo)",
        description="Run DMBP (or a baseline) on MODEL for each image and write overlays, panels, "
        "raw arrays and report.json. The twin is first checked against onnxruntime on the actual "
        "input. Without MODEL, explains the shipped demo model on a sample image.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help="ONNX model (default: the shipped demo model)")
    p.add_argument("images", nargs="*", help="image files or folders (RGB, grayscale or RGBA; any size)")
    p.add_argument("--output", metavar="NAME",
                   help="the model output to explain; only the subgraph it needs is rebuilt (default: the "
                   "first class-probability output, else the first (N, classes) float output, else the first "
                   "float output)")
    p.add_argument("--target", default="auto",
                   help="auto (the predicted class; for map outputs the predicted class's region: the argmax "
                   "channel at the most confident position, where it is the argmax), a class INDEX or NAME")
    p.add_argument("--box", nargs=4, type=int, metavar=("Y0", "X0", "Y1", "X1"),
                   help="for models whose output is a map: explain the summed score in this half-open box "
                   "(output-map coordinates; --target gives the channel; default the whole map)")
    p.add_argument("--method", choices=METHOD_CHOICES, default="dmbp",
                   help="attribution method; 'all' runs every method (lrp when zennit is installed) "
                   "and adds a comparison sheet")
    p.add_argument("--iterations", type=int, default=None, help="DMBP iterations (default: DMBP's, 3)")
    p.add_argument("--rule", choices=DMBP_RULES, default=None,
                   help="the backward mapping DMBP's masks act on: lrp-gamma (default; LRP's Gamma rule) or "
                   "gradient (the paper's mapping, the input gradient; see docs/method.md)")
    p.add_argument("--regions", type=int, default=None, metavar="G",
                   help="DMBP masks per filter and per cell of a G x G grid on each conv layer (default: 4 "
                   "under lrp-gamma, 1 = per filter under gradient; see docs/method.md)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto = CUDA when available (default)")
    p.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    p.add_argument("--out", default="dmbp_out", help="output folder (default ./dmbp_out)")
    p.add_argument("--size", nargs=2, type=int, metavar=("H", "W"),
                   help="model input size (default: metadata, else the declared input shape)")
    p.add_argument("--layout", choices=("nchw", "nhwc"),
                   help="model input layout (default: decided from the graph, e.g. a Transpose to channels "
                   "first after the input; an error asks for this option when the graph does not tell)")
    p.add_argument("--scale", type=float, help="divide pixel values (0..255) by this (default 255)")
    p.add_argument("--mean", nargs="+", type=float, help="per-channel mean, after scaling (default 0)")
    p.add_argument("--std", nargs="+", type=float, help="per-channel std, after scaling (default 1)")
    p.add_argument("--input-npy", help="explain this preprocessed array (model layout) instead of images")
    p.add_argument("--display", choices=("clip", "authors"), default="clip",
                   help="display map recipe: clip at zero (default) or the DMBP authors' min-shift recipe")
    p.add_argument("--force", action="store_true",
                   help="explain even if the twin disagrees with onnxruntime on the input")
    p.add_argument("--quiet", action="store_true", help="no progress bars, no summary")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    add_job_arguments(p)
    p.set_defaults(run=run)


def _installed_methods() -> list[str]:
    """Every method whose optional dependency is installed (lrp needs zennit)."""
    return [m for m in METHOD_NAMES if m != "lrp" or importlib.util.find_spec("zennit") is not None]


def run(args: argparse.Namespace) -> int:
    """Run the explain job described by ``args``; returns the exit code."""
    methods = _installed_methods() if args.method == "all" else [args.method]
    if wants_job(args):
        return run_dataset(args, methods)
    from dmbp_onnx.explain import ExplainRequest, explain

    request = ExplainRequest(
        model=Path(args.model) if args.model else None,
        images=[Path(p) for p in args.images],
        input_npy=Path(args.input_npy) if args.input_npy else None,
        output=args.output,
        target=args.target,
        box=tuple(args.box) if args.box else None,
        methods=methods,
        iterations=args.iterations,
        rule=args.rule,
        regions=args.regions,
        device=args.device,
        batch_size=args.batch_size,
        out=Path(args.out),
        size=tuple(args.size) if args.size else None,
        layout=args.layout.upper() if args.layout else None,
        scale=args.scale,
        mean=args.mean,
        std=args.std,
        display=args.display,
        force=args.force,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    report = explain(request)
    if not args.quiet:
        print(report.summary())
    return 0

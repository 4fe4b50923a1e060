"""``dmbp-onnx validate MODEL``: prove the twin equal to onnxruntime, or name the first diverging node.

Exit status: 0 match, 1 mismatch, 2 when the model, an input file or an option is unusable.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dmbp_onnx.arrays import read_npy
from dmbp_onnx.errors import InputError
from dmbp_onnx.jsonio import dumps
from dmbp_onnx.device import DEVICES  # not dmbp_onnx.runtime: building the parser must not import onnx


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``validate`` subcommand."""
    parser = subparsers.add_parser(
        "validate",
        help="compare the PyTorch twin with onnxruntime",
        description=(
            "Run the model in onnxruntime and in its PyTorch twin and compare every declared "
            "output (|twin - ort| <= atol + rtol * |ort|). On a mismatch, name the first node "
            "whose output diverges. Exit 0 match, 1 mismatch, 2 unusable model or input."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="path of the .onnx file")
    parser.add_argument(
        "--input",
        dest="inputs",
        metavar="X.npy",
        nargs="+",
        action="extend",
        help="one .npy array per graph input, in order "
        "(default: seeded random arrays of the declared shapes; a dynamic batch dimension is 1, "
        "every other dynamic dimension 224; see --shape)",
    )
    parser.add_argument(
        "--shape",
        dest="shapes",
        metavar="NAME=DIMS",
        action="append",
        help="shape of the random values of input NAME, e.g. x=1x3x320x320 (repeatable, one per "
        "input; must agree with the declared rank and static dimensions; not with --input)",
    )
    parser.add_argument(
        "--output",
        metavar="NAME",
        help="validate only this output, on the twin of the subgraph it needs "
        "(ops on other outputs' paths are not converted); default every output",
    )
    parser.add_argument(
        "--expected",
        metavar="Y.npy",
        nargs="+",
        action="extend",
        help="one .npy array per declared output (e.g. the source framework's outputs); "
        "the twin and onnxruntime must both match them",
    )
    parser.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance (default 1e-4)")
    parser.add_argument("--atol", type=float, default=1e-5, help="absolute tolerance (default 1e-5)")
    parser.add_argument(
        "--device", choices=DEVICES, default="auto", help="where the twin runs (auto: CUDA when present)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    parser.set_defaults(run=run)
    return parser


def parse_shapes(texts: list[str]) -> dict[str, list[int]]:
    """``--shape NAME=D0xD1x...`` options as a mapping of input name to shape.

    Raises
    ------
    InputError
        A malformed option or one input named twice (the message names it).
    """
    from dmbp_onnx.validate.inputs import parse_shape

    shapes: dict[str, list[int]] = {}
    for text in texts:
        name, dims = parse_shape(text)
        if name in shapes:
            raise InputError(f"--shape gives input '{name}' twice")
        shapes[name] = dims
    return shapes


def _num(value) -> str:
    """A float in 3 significant digits (``inf``, ``nan`` as such); anything else as its ``str``."""
    return f"{value:.3g}" if isinstance(value, (int, float)) else str(value)


def summary(model: str, report: dict) -> str:
    """The human-readable summary of a report (as :meth:`ValidationReport.to_dict` gives it)."""
    verdict = "MATCH" if report["ok"] else "MISMATCH"
    lines = [
        f"{verdict}: {Path(model).name}: twin vs onnxruntime max abs {_num(report['max_abs'])}, "
        f"max rel {_num(report['max_rel'])} (rtol {report['rtol']:g}, atol {report['atol']:g})"
    ]
    for out in report["outputs"]:
        status = "ok" if out["ok"] else f"{out['mismatched']} element(s) out of tolerance"
        line = (
            f"  output '{out['name']}' {out['shape']}: max abs {_num(out['max_abs'])}, "
            f"max rel {_num(out['max_rel'])}, {status}"
        )
        if "expected_max_abs" in out:
            line += (
                f"; vs expected: twin {_num(out['expected_max_abs'])}, "
                f"onnxruntime {_num(out['ort_vs_expected_max_abs'])}"
                + ("" if out["expected_ok"] else ", out of tolerance")
            )
        lines.append(line)
    if report["first_divergence"]:
        lines.append(f"  first divergence: {report['first_divergence']}")
    if report["top1_agreement"] is not None:
        lines.append(f"  top-1 agreement: {100 * report['top1_agreement']:.1f}%")
    lines.extend(f"  note: {note}" for note in report["notes"])
    origin = f"random (seed {report['seed']})" if report["random_inputs"] else "given"
    lines.append(
        f"  inputs {origin} {report['input_shapes']}; onnxruntime on {', '.join(report['providers'])}; "
        f"twin on {report['twin_device']}"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Validate ``args.model``; print the summary or JSON; 0 on a match, 1 on a mismatch."""
    from dmbp_onnx.twin.twin import load
    from dmbp_onnx.validate import validate

    inputs = [read_npy(p) for p in args.inputs] if args.inputs else None
    shapes = parse_shapes(args.shapes or [])
    if inputs is not None and shapes:
        raise InputError("--shape sets the shape of random inputs; it cannot be combined with --input")
    expected = [read_npy(p) for p in args.expected] if args.expected else None
    twin = load(args.model, output=args.output)
    report = validate(
        twin,
        inputs=inputs,
        expected=expected,
        rtol=args.rtol,
        atol=args.atol,
        device=args.device,
        seed=args.seed,
        shapes=shapes or None,
    ).to_dict()
    print(dumps(report) if args.json else summary(args.model, report))
    return 0 if report["ok"] else 1

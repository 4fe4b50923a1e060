"""``dmbp-onnx`` command line: explain | validate | inspect | audit.

Each subcommand lives in its own module exposing ``add_parser(subparsers)`` and
``run(args) -> int``. User errors (:class:`~dmbp_onnx.errors.DmbpOnnxError`) are
printed as one line on stderr with exit code 2 (1 for a mismatch); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from dmbp_onnx.errors import DmbpOnnxError, MismatchError

SUBCOMMANDS = ("explain", "validate", "inspect", "audit")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand (a missing subcommand module is an error)."""
    parser = argparse.ArgumentParser(
        prog="dmbp-onnx",
        description="Explain any ReLU CNN from its ONNX file (Disentangled Masked Backpropagation).",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"dmbp_onnx.cli.{name}_cmd").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dmbp-onnx`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not [a for a in argv if a != "--debug"]:
        argv = [*argv, "explain"]  # the embedded default: explain the shipped demo
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.run(args))
    except MismatchError as exc:
        if debug:
            raise
        print(f"dmbp-onnx: mismatch: {exc}", file=sys.stderr)
        return 1
    except DmbpOnnxError as exc:
        if debug:
            raise
        print(f"dmbp-onnx: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("dmbp-onnx: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

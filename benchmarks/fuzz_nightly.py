"""Long randomized fuzz run of the twin (the CI test runs a fixed-seed slice of it).

Draws random architectures (``tests/fuzz/architectures.py``) for up to ``--examples``
examples or ``--minutes`` minutes, exports each through the legacy exporter at a
random opset in 11..20 or (a ``--dynamo-share`` of them) the dynamo exporter,
and checks the twin against onnxruntime and torch (``tests/fuzz/harness.py``).
Every failure is written to ``--out`` as a self-contained Python snippet that
reproduces it, with the exported ONNX file beside it, a line saying which of
twin, onnxruntime and torch disagree, and the regression test it is already
pinned by (``harness.known_issue``), if any. Exits 1 when any example failed
that no regression test pins yet. Usage::

    python benchmarks/fuzz_nightly.py [--examples 2000] [--minutes 30] [--seed N]
        [--dynamo-share 0.1] [--out fuzz-failures]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fuzz.architectures import architectures, build, sample_input  # noqa: E402
from fuzz.export import LEGACY_OPSETS, export  # noqa: E402
from fuzz.harness import check_example, classify, known_issue  # noqa: E402

SNIPPET = '''"""Fuzz failure {index}: {verdict}

Already pinned in tests/fuzz/test_regressions.py: {known}
"""
import sys
sys.path.insert(0, "tests")
from fuzz.architectures import *  # noqa: F403
from fuzz.harness import check_example

arch = {arch!r}
check_example(arch, {exporter!r}, {opset!r})  # {error}
'''


def run(examples: int, minutes: float, seed: int, dynamo_share: float, out: Path) -> dict:
    """Fuzz until ``examples`` are done or ``minutes`` have passed; returns the summary."""
    deadline = time.monotonic() + 60 * minutes
    chooser = random.Random(seed)
    stats = {"seed": seed, "examples": 0, "legacy": 0, "dynamo": 0, "failures": []}

    @settings(
        max_examples=examples, deadline=None, database=None, derandomize=False,
        suppress_health_check=list(HealthCheck), phases=["generate"],
    )
    @hypothesis_seed(seed)
    @given(arch=architectures())
    def one(arch):
        if time.monotonic() > deadline:
            return
        exporter = "dynamo" if chooser.random() < dynamo_share else "legacy"
        opset = chooser.choice(LEGACY_OPSETS) if exporter == "legacy" else None
        stats["examples"] += 1
        stats[exporter] += 1
        try:
            check_example(arch, exporter, opset)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the run
            record(arch, exporter, opset, exc)

    def record(arch, exporter, opset, exc):
        index = len(stats["failures"])
        try:
            data = export(build(arch), sample_input(arch), exporter, opset)
            verdict = classify(arch, data)
            (out / f"failure_{index:03d}.onnx").write_bytes(data)
        except Exception as err:  # noqa: BLE001 - the export itself failed
            verdict = f"export raised {type(err).__name__}: {err}"
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        known = known_issue(arch, exporter)
        snippet = SNIPPET.format(
            index=index, verdict=verdict, known=known, arch=arch, exporter=exporter, opset=opset, error=error
        )
        (out / f"failure_{index:03d}.py").write_text(snippet)
        stats["failures"].append(
            {"exporter": exporter, "opset": opset, "verdict": verdict, "error": error, "known": known}
        )
        print(f"failure {index}: {exporter} opset {opset}: {verdict} [known: {known}]", flush=True)

    one()
    return stats


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--dynamo-share", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=Path("fuzz-failures"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stats = run(args.examples, args.minutes, args.seed, args.dynamo_share, args.out)
    stats["seconds"] = round(time.monotonic() - started, 1)
    (args.out / "summary.json").write_text(json.dumps(stats, indent=1) + "\n")
    print(
        f"{stats['examples']} examples ({stats['legacy']} legacy, {stats['dynamo']} dynamo) "
        f"in {stats['seconds']} s, seed {args.seed}: {len(stats['failures'])} failures -> {args.out}"
    )
    new = [f for f in stats["failures"] if f["known"] is None]
    print(f"{len(new)} failures not pinned by a regression test yet")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main())

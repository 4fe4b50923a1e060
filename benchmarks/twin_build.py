"""Twin build and forward time on VGG16- and ResNet50-sized models.

For each model (plain torch, seeded random weights, BatchNorm statistics
randomised) exported to ONNX (legacy exporter, opset 17, batch 1) in a temporary
directory, this measures, in one process with a fixed thread count:

* build time: ``dmbp_onnx.load(path)`` vs ``onnx2torch.convert(path)`` on the same file;
* forward time: the twin vs the native torch module with the same weights, vs
  onnxruntime (CPU) and vs the onnx2torch module.

Contenders run interleaved (round-robin, rotating order) so that load from other
processes hits them alike; the table reports medians and the median of the
per-round ratios. Writes ``benchmarks/results/twin_build.json`` and prints a
Markdown table. Usage::

    python benchmarks/twin_build.py [--threads 1] [--size 224] [--rounds 9] [--builds 3]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import types
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dmbp_onnx  # noqa: E402
from models.architectures import randomize_batchnorm, resnet50, vgg16  # noqa: E402
from models.export import export_onnx  # noqa: E402

MODELS: dict[str, Callable[[], torch.nn.Module]] = {"vgg16": vgg16, "resnet50": resnet50}


def import_onnx2torch() -> types.ModuleType:
    """Import onnx2torch with a stub ``torchvision`` (the real one cannot load next to torch 2.13 CPU).

    onnx2torch imports ``torchvision`` / ``torchvision.ops.roi_align`` at import
    time for its NonMaxSuppression and RoiAlign converters only; neither op occurs here.
    """
    if "torchvision" not in sys.modules:
        stub, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")

        def unavailable(*args, **kwargs):
            raise RuntimeError("torchvision is stubbed out in this benchmark")

        ops.roi_align = ops.nms = ops.box_convert = unavailable
        stub.ops = ops
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = stub, ops
    import onnx2torch

    return onnx2torch


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(contenders: dict[str, Callable[[], object]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each contender once per round, rotating the order every round."""
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(timed(contenders[name]))
    return times


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over rounds of ``num / den`` (same-round pairs)."""
    return statistics.median(a / b for a, b in zip(num, den))


def bench_model(name: str, size: int, rounds: int, builds: int, threads: int, workdir: Path) -> dict:
    """Export one model and measure build and forward times."""
    onnx2torch = import_onnx2torch()
    torch.manual_seed(0)
    net = randomize_batchnorm(MODELS[name]())
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32))
    path = workdir / f"{name}.onnx"
    start = time.perf_counter()
    onnx.save_model(export_onnx(net, x, dynamic_batch=False), str(path))
    export_s = time.perf_counter() - start

    build_times: dict[str, list[float]] = {"dmbp_onnx.load": [], "onnx2torch.convert": []}
    twin = converted = None
    for k in range(builds):
        order = ["dmbp_onnx.load", "onnx2torch.convert"][:: 1 if k % 2 == 0 else -1]
        for contender in order:
            twin = converted = None
            gc.collect()
            start = time.perf_counter()
            if contender == "dmbp_onnx.load":
                twin = dmbp_onnx.load(path)
            else:
                converted = onnx2torch.convert(str(path)).eval()
            build_times[contender].append(time.perf_counter() - start)
    twin = dmbp_onnx.load(path)
    converted = onnx2torch.convert(str(path)).eval()

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}

    with torch.no_grad():
        reference = net(x)
        diffs = {
            "twin_vs_torch": float((twin(x) - reference).abs().max()),
            "onnxruntime_vs_torch": float(np.abs(session.run(None, feed)[0] - reference.numpy()).max()),
            "onnx2torch_vs_torch": float((converted(x) - reference).abs().max()),
        }
        forward = interleaved(
            {
                "torch": lambda: net(x),
                "twin": lambda: twin(x),
                "onnxruntime": lambda: session.run(None, feed),
                "onnx2torch": lambda: converted(x),
            },
            rounds,
        )
    median = {k: statistics.median(v) for k, v in forward.items()}
    return {
        "model": name,
        "params_millions": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
        "input_shape": list(x.shape),
        "onnx_mb": round(path.stat().st_size / 2**20, 1),
        "onnx_ops": sorted({n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}),
        "export_s": round(export_s, 3),
        "build_s": {k: [round(t, 4) for t in v] for k, v in build_times.items()},
        "build_median_s": {k: round(statistics.median(v), 4) for k, v in build_times.items()},
        "build_ratio_twin_over_onnx2torch": round(
            paired_ratio(build_times["dmbp_onnx.load"], build_times["onnx2torch.convert"]), 3
        ),
        "forward_s": {k: [round(t, 5) for t in v] for k, v in forward.items()},
        "forward_median_s": {k: round(v, 5) for k, v in median.items()},
        "forward_ratio_twin_over": {
            other: round(paired_ratio(forward["twin"], forward[other]), 3)
            for other in ("torch", "onnxruntime", "onnx2torch")
        },
        "max_abs_diff": diffs,
    }


def markdown(results: list[dict], threads: int) -> str:
    """The summary table."""
    lines = [
        f"torch threads = onnxruntime intra-op threads = {threads}; medians; ratios are medians of same-round ratios",
        "",
        "| model | params (M) | build twin (s) | build onnx2torch (s) | twin/onnx2torch build "
        "| fwd torch (ms) | fwd twin (ms) | fwd onnxruntime (ms) | fwd onnx2torch (ms) "
        "| twin/torch | twin/onnxruntime | max abs diff twin vs torch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, f, q = r["build_median_s"], r["forward_median_s"], r["forward_ratio_twin_over"]
        lines.append(
            f"| {r['model']} {tuple(r['input_shape'])} | {r['params_millions']} | {b['dmbp_onnx.load']:.2f} "
            f"| {b['onnx2torch.convert']:.2f} | {r['build_ratio_twin_over_onnx2torch']:.2f} "
            f"| {f['torch'] * 1e3:.1f} | {f['twin'] * 1e3:.1f} | {f['onnxruntime'] * 1e3:.1f} "
            f"| {f['onnx2torch'] * 1e3:.1f} | {q['torch']:.3f} | {q['onnxruntime']:.3f} "
            f"| {r['max_abs_diff']['twin_vs_torch']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default 1)")
    parser.add_argument("--size", type=int, default=224, help="input side (default 224)")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved forward rounds (default 9)")
    parser.add_argument("--builds", type=int, default=3, help="builds per converter (default 3)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "twin_build.json")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench_model(m, args.size, args.rounds, args.builds, args.threads, Path(tmp)) for m in args.models]
    report = {
        "benchmark": "twin_build",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch_threads": torch.get_num_threads(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        },
        "versions": {p: metadata.version(p) for p in ("torch", "onnx", "onnxruntime", "onnx2torch", "dmbp-onnx")},
        "rounds": args.rounds,
        "builds": args.builds,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(results, args.threads))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

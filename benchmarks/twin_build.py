"""Twin build and forward time on VGG16- and ResNet50-sized models.

For each model (plain torch, torchvision's seeded init, random BatchNorm
statistics and biases) exported to ONNX (legacy exporter, opset 17, batch 1) in a temporary
directory, this measures, in one process with a fixed thread count:

* build time: ``dmbp_onnx.load(path)`` vs ``onnx2torch.convert(path)`` on the same file;
* forward time: the twin vs the native torch module with the same weights, vs
  onnxruntime (CPU) and vs the onnx2torch module.

Contenders run interleaved (round-robin, rotating order) so that load from other
processes hits them alike. Each call is timed in wall-clock and in process CPU
time (steadier on a shared machine); the table reports CPU-time medians and the
medians of the per-round ratios, the JSON both clocks. Writes ``benchmarks/results/twin_build.json`` and prints a
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


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """``(wall, cpu)`` seconds of one call; CPU time counts every thread of this process.

    On a shared machine CPU time is the steadier measure: it does not grow while
    other processes hold the cores.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def interleaved(
    contenders: dict[str, Callable[[], object]], rounds: int, warmup: int = 1
) -> dict[str, dict[str, list[float]]]:
    """Time each contender once per round, rotating the order every round.

    Returns ``{"wall": {name: [s, ...]}, "cpu": {name: [s, ...]}}``.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, dict[str, list[float]]] = {"wall": {n: [] for n in names}, "cpu": {n: [] for n in names}}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            wall, cpu = timed(contenders[name])
            times["wall"][name].append(wall)
            times["cpu"][name].append(cpu)
    return times


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over rounds of ``num / den`` (same-round pairs)."""
    return statistics.median(a / b for a, b in zip(num, den))


def trained_like(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm statistics and small random biases (in place), like a trained net.

    torchvision's init zeroes every bias; the legacy exporter then deduplicates the
    identical zero initializers into ``Identity`` nodes, which onnx2torch 1.5.15
    cannot convert (``KeyError: 'features.2.bias'``). Trained nets have distinct biases.
    """
    randomize_batchnorm(net, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) and module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.01)
    return net.eval()


def bench_model(name: str, size: int, rounds: int, builds: int, threads: int, workdir: Path) -> dict:
    """Export one model and measure build and forward times."""
    onnx2torch = import_onnx2torch()
    torch.manual_seed(0)
    net = trained_like(MODELS[name]())
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32))
    path = workdir / f"{name}.onnx"
    start = time.perf_counter()
    onnx.save_model(export_onnx(net, x, dynamic_batch=False), str(path))
    export_s = time.perf_counter() - start

    build: dict[str, dict[str, list[float]]] = {"wall": {}, "cpu": {}}
    for k in range(builds):
        names = ["dmbp_onnx.load", "onnx2torch.convert"][:: 1 if k % 2 == 0 else -1]
        for contender in names:
            gc.collect()
            if contender == "dmbp_onnx.load":
                wall, cpu = timed(lambda: dmbp_onnx.load(path))
            else:
                wall, cpu = timed(lambda: onnx2torch.convert(str(path)))
            build["wall"].setdefault(contender, []).append(wall)
            build["cpu"].setdefault(contender, []).append(cpu)
    twin = dmbp_onnx.load(path)
    converted = onnx2torch.convert(str(path)).eval()

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}

    with torch.no_grad():
        reference = net(x).numpy()
        outputs = {
            "twin": twin(x).numpy(),
            "onnxruntime": session.run(None, feed)[0],
            "onnx2torch": converted(x).numpy(),
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
    scale = float(np.abs(reference).max())
    return {
        "model": name,
        "params_millions": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
        "input_shape": list(x.shape),
        "onnx_mb": round(path.stat().st_size / 2**20, 1),
        "onnx_ops": sorted({n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}),
        "export_s": round(export_s, 3),
        "build_s": _rounded(build),
        "build_median_s": _medians(build),
        "build_ratio_twin_over_onnx2torch": {
            clock: round(paired_ratio(build[clock]["dmbp_onnx.load"], build[clock]["onnx2torch.convert"]), 3)
            for clock in ("wall", "cpu")
        },
        "forward_s": _rounded(forward),
        "forward_median_s": _medians(forward),
        "forward_ratio_twin_over": {
            clock: {
                other: round(paired_ratio(forward[clock]["twin"], forward[clock][other]), 3)
                for other in ("torch", "onnxruntime", "onnx2torch")
            }
            for clock in ("wall", "cpu")
        },
        "output_max_abs": scale,
        "max_abs_diff_vs_torch": {k: float(np.abs(v - reference).max()) for k, v in outputs.items()},
        "max_rel_diff_vs_torch": {k: float(np.abs(v - reference).max()) / scale for k, v in outputs.items()},
    }


def _rounded(times: dict[str, dict[str, list[float]]]) -> dict:
    return {clock: {k: [round(t, 5) for t in v] for k, v in d.items()} for clock, d in times.items()}


def _medians(times: dict[str, dict[str, list[float]]]) -> dict:
    return {clock: {k: round(statistics.median(v), 5) for k, v in d.items()} for clock, d in times.items()}


def markdown(results: list[dict], threads: int) -> str:
    """The summary table (CPU-time medians; ratios are medians of same-round ratios)."""
    lines = [
        f"torch threads = onnxruntime intra-op threads = {threads}. Times: medians of process CPU time "
        "(wall-clock in the JSON). Ratios: median over rounds of same-round ratios.",
        "",
        "| model | params (M) | build twin (s) | build onnx2torch (s) | build twin/onnx2torch "
        "| fwd torch (ms) | fwd twin (ms) | fwd onnxruntime (ms) | fwd onnx2torch (ms) "
        "| fwd twin/torch | fwd twin/onnxruntime | fwd twin/onnx2torch | max rel diff twin vs torch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, f = r["build_median_s"]["cpu"], r["forward_median_s"]["cpu"]
        q = r["forward_ratio_twin_over"]["cpu"]
        lines.append(
            f"| {r['model']} {'x'.join(map(str, r['input_shape']))} | {r['params_millions']} "
            f"| {b['dmbp_onnx.load']:.2f} | {b['onnx2torch.convert']:.2f} "
            f"| {r['build_ratio_twin_over_onnx2torch']['cpu']:.2f} "
            f"| {f['torch'] * 1e3:.1f} | {f['twin'] * 1e3:.1f} | {f['onnxruntime'] * 1e3:.1f} "
            f"| {f['onnx2torch'] * 1e3:.1f} | {q['torch']:.3f} | {q['onnxruntime']:.3f} | {q['onnx2torch']:.3f} "
            f"| {r['max_rel_diff_vs_torch']['twin']:.1e} |"
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
    if "vgg16" in args.models and args.size % 224:
        parser.error("vgg16 needs --size a multiple of 224 (the legacy exporter maps its 7x7 adaptive pool "
                     "to AveragePool only when 7 divides the feature map)")
    if args.size % 32:
        parser.error("--size must be a multiple of 32")

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

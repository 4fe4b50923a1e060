"""DMBP speed and memory: fast path vs one forward pass, vs the reference loop, and images/s.

A VGG-style ReLU CNN (defined here in plain torch) is exported to ONNX and rebuilt
as a twin. Measured on CPU, one process, interleaved repetitions, medians:

* ``iteration_over_forward``: time of one DMBP iteration (both mask sets of a batch of 8)
  divided by one plain (no-grad) forward pass of the same batch (goal <= 4.5); the
  shared 2-core machine makes single timings noisy, so each repetition takes the best
  of 5 forwards, and ``_best_of_each`` divides the best iteration time by the best forward;
* the same ratio with the mapping's two passes in channels-last layout
  (``MaskedMapping(channels_last=True)``, not DMBP's default: results equal up to the
  convolutions' rounding, not bit for bit), timed in the same repetitions;
* ``fast_vs_reference``: speed-up of the fast path over ``benchmarks/dmbp_reference.py``
  (goal >= 1.7) and the peak torch CPU memory of both (torch profiler allocation events;
  goal: the fast path's lower), with DMBP's automatic chunk size (which runs one probe
  forward pass) and with ``batch_size`` given;
* images/s at batch 1, 8 and 32 with a few iterations, and extrapolated to 200 iterations;
* on CUDA, when available: a ResNet50-sized twin at 224x224, 200 iterations, images/s
  batched and one image at a time.

Writes ``benchmarks/results/perf_dmbp.json``. Run: ``python benchmarks/perf_dmbp.py [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dmbp_onnx  # noqa: E402
import dmbp_onnx.methods.dmbp as dmbp_module  # noqa: E402
from dmbp_onnx.methods import DMBP  # noqa: E402
from dmbp_reference import reference_dmbp  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "perf_dmbp.json"


def vgg_style(width: int = 32, classes: int = 10, size: int = 96) -> nn.Sequential:
    """Four VGG stages of two 3x3 conv + ReLU and a 2x2 max-pool, then two FC layers."""
    layers: list[nn.Module] = []
    cin = 3
    for cout in (width, 2 * width, 4 * width, 4 * width):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU()]
        layers.append(nn.MaxPool2d(2))
        cin = cout
    side = size // 16
    layers += [nn.Flatten(), nn.Linear(cin * side * side, 256), nn.ReLU(), nn.Linear(256, classes)]
    return nn.Sequential(*layers).eval()


class Bottleneck(nn.Module):
    """ResNet50 bottleneck block (BN folded away at export)."""

    def __init__(self, cin: int, mid: int, stride: int) -> None:
        super().__init__()
        cout = 4 * mid
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )  # fmt: skip
        self.skip = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


def resnet50(classes: int = 1000) -> nn.Sequential:
    """ResNet50's layout (3, 4, 6, 3 bottlenecks) in plain torch."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
    ]  # fmt: skip
    cin = 64
    for mid, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for k in range(blocks):
            layers.append(Bottleneck(cin, mid, stride if k == 0 else 1))
            cin = 4 * mid
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers).eval()


def twin_of(model: nn.Module, shape: tuple) -> "dmbp_onnx.Twin":
    """Export ``model`` (legacy exporter, dynamic batch) and rebuild it as a twin."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, torch.randn(1, *shape), buffer, dynamo=False, input_names=["x"],
            dynamic_axes={"x": {0: "n"}},
        )  # fmt: skip
    return dmbp_onnx.load(buffer.getvalue())


def clock(fn, device: torch.device) -> float:
    """Wall time of ``fn()`` in seconds (synchronising CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def peak_cpu_bytes(fn) -> int:
    """Peak of torch's live CPU allocations during ``fn()``, from the profiler's allocation events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted(prof.events(), key=lambda e: e.time_range.start)
    live = peak = 0
    for event in events:  # allocations count at their op's start, frees ("[memory]" events) when they happen
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return int(peak)


@contextlib.contextmanager
def channels_last_passes():
    """DMBP with its :class:`MaskedMapping` built with ``channels_last=True``."""
    original = dmbp_module.MaskedMapping
    dmbp_module.MaskedMapping = functools.partial(original, channels_last=True)
    try:
        yield
    finally:
        dmbp_module.MaskedMapping = original


def per_iteration(twin, x: torch.Tensor, iterations: int, device: torch.device) -> tuple[float, float]:
    """``(seconds per iteration, setup seconds)`` of DMBP: runs with ``iterations`` and with 0."""
    full = clock(lambda: DMBP(twin, iterations=iterations, device=str(device), batch_size=len(x)).attribute(x), device)
    setup = clock(lambda: DMBP(twin, iterations=0, device=str(device), batch_size=len(x)).attribute(x), device)
    return (full - setup) / iterations, setup


def cpu_section(repeats: int, iterations: int, batches: tuple[int, ...]) -> dict:
    torch.manual_seed(0)
    size = 96
    twin = twin_of(vgg_style(size=size), (3, size, size))
    device = torch.device("cpu")
    x8 = torch.randn(8, 3, size, size)
    DMBP(twin, iterations=2, device="cpu").attribute(x8[:2])  # warm-up (lazy imports, allocator)
    ratios, forwards, its, fast_times, ref_times, ratios_cl, its_cl = [], [], [], [], [], [], []
    for _ in range(repeats):
        with torch.no_grad():
            forward = min(clock(lambda: twin(x8), device) for _ in range(5))
        it, _ = per_iteration(twin, x8, iterations, device)
        with channels_last_passes():
            it_cl, _ = per_iteration(twin, x8, iterations, device)
        ratios.append(it / forward)
        ratios_cl.append(it_cl / forward)
        forwards.append(forward)
        its.append(it)
        its_cl.append(it_cl)
        xr = x8[:2]
        fast_times.append(clock(lambda: DMBP(twin, iterations=iterations, device="cpu").attribute(xr), device))
        ref_times.append(clock(lambda: reference_dmbp(twin, xr, iterations=iterations), device))
    xr = x8[:2]
    fast_peak = peak_cpu_bytes(lambda: DMBP(twin, iterations=3, device="cpu").attribute(xr))
    fixed_peak = peak_cpu_bytes(lambda: DMBP(twin, iterations=3, device="cpu", batch_size=2).attribute(xr))
    ref_peak = peak_cpu_bytes(lambda: reference_dmbp(twin, xr, iterations=3))
    throughput = {}
    for batch in batches:
        x = torch.randn(batch, 3, size, size)
        it, setup = per_iteration(twin, x, iterations, device)
        throughput[str(batch)] = {
            "seconds_per_iteration": it,
            "setup_seconds": setup,
            f"images_per_s_at_{iterations}_iterations": batch / (setup + iterations * it),
            "images_per_s_at_200_iterations": batch / (setup + 200 * it),
        }
    return {
        "model": f"VGG-style, 8 conv + 2 FC, width 32, input 3x{size}x{size}, {len(twin.mask_sites)} mask sites",
        "threads": torch.get_num_threads(),
        "iterations_timed": iterations,
        "iteration_over_forward_batch8": statistics.median(ratios),
        "iteration_over_forward_all": ratios,
        "iteration_over_forward_best_of_each": min(its) / min(forwards),
        "iteration_over_forward_batch8_channels_last": statistics.median(ratios_cl),
        "iteration_over_forward_channels_last_all": ratios_cl,
        "iteration_over_forward_channels_last_best_of_each": min(its_cl) / min(forwards),
        "forward_seconds_batch8": min(forwards),
        "fast_vs_reference_speedup_batch2": statistics.median(r / f for r, f in zip(ref_times, fast_times)),
        "fast_seconds_batch2": statistics.median(fast_times),
        "reference_seconds_batch2": statistics.median(ref_times),
        "peak_cpu_mb_fast_batch2": fast_peak / 2**20,
        "peak_cpu_mb_fast_batch2_given_batch_size": fixed_peak / 2**20,
        "peak_cpu_mb_reference_batch2": ref_peak / 2**20,
        "throughput": throughput,
    }


def gpu_section(batch: int = 16, iterations: int = 200) -> dict:
    torch.manual_seed(0)
    twin = twin_of(resnet50(), (3, 224, 224))
    device = torch.device("cuda")
    x = torch.randn(batch, 3, 224, 224)
    DMBP(twin, iterations=2, device="cuda").attribute(x[:2])  # warm-up
    torch.cuda.reset_peak_memory_stats()
    batched = clock(lambda: DMBP(twin, iterations=iterations, device="cuda", batch_size=batch).attribute(x), device)
    peak = torch.cuda.max_memory_allocated()
    single = clock(lambda: DMBP(twin, iterations=iterations, device="cuda").attribute(x[:1]), device)
    return {
        "model": "ResNet50 layout (BN folded), 3x224x224",
        "device": torch.cuda.get_device_name(),
        "iterations": iterations,
        "batch": batch,
        "images_per_s_batched": batch / batched,
        "images_per_s_single": 1 / single,
        "peak_cuda_mb_batched": peak / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition, 5 iterations (smoke run)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats, iterations = (1, 5) if args.quick else (5, 10)
    result = {
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu": cpu_section(repeats, iterations, (1, 8, 32)),
    }
    if torch.cuda.is_available():
        result["cuda"] = gpu_section()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Where DMBP's time goes on CUDA: ResNet-50 at 224x224 (random weights), chunk size, timings, profiler tables.

Run on a GPU machine: ``python benchmarks/gpu_profile.py OUT_DIR``.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from perf_dmbp import clock, random_images, twin_of  # noqa: E402

from dmbp_onnx.methods import DMBP  # noqa: E402
from models.architectures import resnet50  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    twin = twin_of(resnet50(), 224).to("cuda")
    x = random_images(3, 224, 224)[:16]
    cuda = torch.device("cuda")
    lines = []
    for options in ({}, {"rule": "gradient"}, {"batch_size": 16}, {"iterations": 0}, {"path_steps": 1}):
        method = DMBP(twin, device="cuda", **options)
        method.attribute(x)
        chunk = method.chunk_size(x.cuda())
        lines.append(f"{options}: chunk {chunk}, batch 16 {clock(lambda: method.attribute(x), cuda):.3f} s, "
                     f"batch 1 {clock(lambda: method.attribute(x[:1]), cuda):.3f} s")
        print(lines[-1], flush=True)
    method = DMBP(twin, device="cuda")
    profiler = cProfile.Profile()
    profiler.enable()
    method.attribute(x[:1])
    torch.cuda.synchronize()
    profiler.disable()
    with open(out / "cprofile.txt", "w") as f:
        stats = pstats.Stats(profiler, stream=f)
        stats.sort_stats("cumulative").print_stats(45)
        stats.sort_stats("tottime").print_stats(30)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        method.attribute(x[:1])
        torch.cuda.synchronize()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=35)
    (out / "torch_profile.txt").write_text("\n".join(lines) + "\n\n" + table + "\n\n"
                                          + prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=20))
    print("\n".join(lines))


if __name__ == "__main__":
    main()

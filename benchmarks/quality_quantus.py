"""Our metrics next to Quantus's (Hedström et al., JMLR 2023) on the same maps of the demo set.

Needs the ``bench`` extra (``pip install -e '.[bench]'``: Quantus without TensorFlow). The demo
model, images, targets (the predicted class) and methods are those of ``benchmarks/quality.py``;
each method attributes once and both implementations score the *same* maps with the *same* score
(the raw logit of the target) and baseline (0 after normalisation, i.e. the mean colour):

* **random-subset sensitivity-n** — ours (:func:`dmbp_onnx.metrics.sensitivity_n`, per image)
  against Quantus's ``FaithfulnessCorrelation``, which is the same estimator (Pearson, per image,
  between the map's sum over a random feature subset and the score drop when the subset is set to
  the baseline). Quantus's features are the elements of the input array, ours are pixels (all
  channels) or 4x4 patches; :class:`UnitMasked` feeds Quantus one keep-flag per pixel or patch, so
  its features become exactly our units. Quantus is also run on the image itself (features =
  channel values) with our settings, and with its own defaults.
* **Quantus's ``SensitivityN``** — features removed in order of decreasing attribution,
  cumulatively, and one Pearson correlation *across the images* per n: a different estimand from
  ours (per image, random subsets), reported next to ours with a bootstrap over images.
* **pointing game** — ours (tolerance 15 px at 224 px; every maximal pixel must be in tolerance)
  with its default and with tolerance 0, against Quantus's ``PointingGame`` (no tolerance; a hit
  when *any* maximal pixel is on the object).

Per-image comparisons: the paired difference (ours − Quantus) with its 95 % bootstrap interval and
the Spearman rank agreement of the per-image scores. Random subsets differ between the two
implementations, so the sampling noise of the estimator is measured alongside: ours with a second
seed against ours (its paired difference and Spearman are what "agreement within sampling noise"
looks like).

Results: ``benchmarks/results/quality_quantus.{json,md}`` (``--quick``: ``results/quick/``).
Run: ``python benchmarks/quality_quantus.py [--quick] [--images N] [--subsets R]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dmbp_onnx import jsonio, metrics  # noqa: E402
from dmbp_onnx.methods.lrp import import_zennit  # noqa: E402
from dmbp_onnx.metrics import Interval, bootstrap_mean, paired_difference  # noqa: E402
from quality import BASELINES, LABELS, PATCH, demo_data, methods, predicted  # noqa: E402
from quality_eval import CachedScorer  # noqa: E402
from quality_stats import from_list, to_list  # noqa: E402

if importlib.util.find_spec("zennit") is not None:
    import_zennit()  # Quantus imports zennit when it is installed; this tolerates a torchvision that does not load
import quantus  # noqa: E402
from quantus.functions.similarity_func import correlation_pearson  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: Rows: DMBP with its shipped defaults and the baselines compared (cheap ones, different map styles).
ROWS = ("dmbp", "ig", "gradxinput", "gradient", "gradcam")
#: Shares of the units (pixels, or 4x4 patches) per subset.
FRACTIONS = (0.05, 0.2, 0.5)
#: Units per step of Quantus's SensitivityN (pixels, patches): 128 steps each; a step must divide the unit count.
SENS_N_STEPS = {1: 32, PATCH: 2}
QUICK = dict(images=16, subsets=32)


def method_builders() -> dict[str, Callable]:
    """``name -> build(twin)`` of :data:`ROWS`, as ``benchmarks/quality.py`` builds them."""
    available = {"dmbp": methods(quick=True)["dmbp"], **BASELINES}
    return {name: available[name] for name in ROWS}


class Memoised(nn.Module):
    """An ``nn.Module`` in evaluation mode (as Quantus's PyTorch wrapper wants) that memoises its logits per input row.

    FaithfulnessCorrelation's perturbed inputs depend on numpy's random state only, not on the
    map: seeded alike, every method after the first reuses their forward passes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cache: dict[bytes, torch.Tensor] = {}
        self.eval()

    def compute(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of a batch (subclasses)."""
        raise NotImplementedError

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits per row of ``inputs``, computed for rows not seen before."""
        keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in inputs.cpu().numpy()]
        missing = [k for k, key in enumerate(keys) if key not in self.cache]
        if missing:
            self.cache.update(zip((keys[k] for k in missing), self.compute(inputs[missing])))
        return torch.stack([self.cache[key] for key in keys])


class TwinModule(Memoised):
    """The twin on images (Quantus's features: the channel values)."""

    def __init__(self, twin) -> None:
        super().__init__()
        self.twin = twin

    def compute(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits of the twin."""
        return self.twin(inputs)


class UnitMasked(Memoised):
    """The twin on images rebuilt from keep flags, one per unit (pixel or ``patch`` x ``patch`` block).

    Quantus perturbs the *elements* of the array it is given. Given flags of shape
    ``(N, 1, ceil(H / patch), ceil(W / patch))`` instead of images, its features are our
    units: image ``i``'s flags hold ``i + 1`` (kept), Quantus sets removed ones to its baseline 0,
    and the forward pass rebuilds ``where(kept, x[i], 0)`` — our baseline 0 on the whole unit.

    Parameters
    ----------
    twin : dmbp_onnx.Twin
        The model.
    x : torch.Tensor
        ``(N, C, H, W)`` images, normalised.
    patch : int
        Side of a unit in pixels (1: pixels).
    """

    def __init__(self, twin, x: torch.Tensor, patch: int) -> None:
        super().__init__()
        self.twin, self.x, self.patch = twin, x, patch

    def flags(self) -> np.ndarray:
        """Quantus's ``x_batch``: every unit of image ``i`` kept, value ``i + 1``."""
        n, _, h, w = self.x.shape
        shape = (n, 1, -(-h // self.patch), -(-w // self.patch))
        return np.broadcast_to(np.arange(1, n + 1, dtype=np.float32)[:, None, None, None], shape).copy()

    def compute(self, flags: torch.Tensor) -> torch.Tensor:
        """Logits of the images rebuilt from ``flags`` (all units removed: the baseline image)."""
        index = (flags.flatten(1).amax(1).round().long() - 1).clamp(min=0)
        keep = flags > 0
        if self.patch > 1:
            keep = keep.repeat_interleave(self.patch, 2).repeat_interleave(self.patch, 3)
        keep = keep[..., : self.x.shape[2], : self.x.shape[3]]
        return self.twin(torch.where(keep, self.x[index], torch.zeros((), dtype=self.x.dtype)))


def unit_maps(maps: np.ndarray, patch: int) -> np.ndarray:
    """``(N, 1, h, w)`` map sums per unit (pixels when ``patch`` is 1), Quantus's ``a_batch``."""
    n, h, w = maps.shape
    if patch == 1:
        return maps[:, None].astype(np.float64)
    padded = np.zeros((n, -(-h // patch) * patch, -(-w // patch) * patch))
    padded[:, :h, :w] = maps
    blocks = padded.reshape(n, padded.shape[1] // patch, patch, padded.shape[2] // patch, patch)
    return blocks.sum(axis=(2, 4))[:, None]


def spearman_finite(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation over the images where both values are finite."""
    keep = np.isfinite(a) & np.isfinite(b)
    return metrics.spearman(a[keep], b[keep]) if keep.sum() > 2 else float("nan")


def bootstrap_pearson(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> Interval:
    """Pearson correlation across images of ``a`` and ``b`` with a percentile bootstrap over images."""
    rng = np.random.default_rng(seed)
    draws = [metrics.pearson(a[rows], b[rows]) for rows in rng.integers(0, len(a), size=(resamples, len(a)))]
    low, high = np.nanquantile(draws, [0.025, 0.975])
    return Interval(metrics.pearson(a, b), float(low), float(high), len(a))


class Recorder:
    """Quantus ``similarity_func`` that keeps the arrays it correlates (its SensitivityN discards them)."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, a: np.ndarray, b: np.ndarray, batched: bool = False, **kwargs) -> np.ndarray:
        """Pearson per row, as ``quantus.similarity_func.correlation_pearson``."""
        self.calls.append((np.array(a), np.array(b)))
        return correlation_pearson(a, b, batched=batched)


def quantus_faithfulness(model: nn.Module, x: np.ndarray, a: np.ndarray, targets: np.ndarray, subset: int,
                         runs: int, seed: int, baseline: float | str = 0.0) -> np.ndarray:
    """Quantus's FaithfulnessCorrelation per image (logits, no normalisation or abs: our settings)."""
    np.random.seed(seed)  # Quantus draws its subsets from numpy's global generator
    metric = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=subset, perturb_baseline=baseline, abs=False,
                                             normalise=False, return_aggregate=False, disable_warnings=True)
    scores = metric(model=model, x_batch=x, y_batch=targets, a_batch=a, softmax=False, device="cpu",
                    batch_size=len(x))
    return np.asarray(scores, dtype=np.float64)


def quantus_defaults(model: nn.Module, x: np.ndarray, a: np.ndarray, targets: np.ndarray, seed: int) -> np.ndarray:
    """FaithfulnessCorrelation as Quantus ships it (224 elements, 100 runs, baseline "black", max-normalised)."""
    np.random.seed(seed)
    metric = quantus.FaithfulnessCorrelation(return_aggregate=False, disable_warnings=True)
    return np.asarray(metric(model=model, x_batch=x, y_batch=targets, a_batch=a, softmax=False, device="cpu",
                             batch_size=len(x)), dtype=np.float64)


def quantus_sensitivity_n(model: UnitMasked, a: np.ndarray, targets: np.ndarray, step: int,
                          fractions: tuple[float, ...]) -> dict[str, dict]:
    """Quantus's SensitivityN (ordered, cumulative; Pearson across images per n) at the n nearest ``fractions``.

    All images go in one batch: Quantus correlates within the first batch only.
    """
    recorder = Recorder()
    metric = quantus.SensitivityN(features_in_step=step, n_max_percentage=max(fractions), perturb_baseline=0.0,
                                  similarity_func=recorder, abs=False, normalise=False, return_aggregate=False,
                                  disable_warnings=True)
    flags = model.flags()
    metric(model=model, x_batch=flags, y_batch=targets, a_batch=a, softmax=False, device="cpu", batch_size=len(flags))
    deltas, sums = recorder.calls[-1]  # (steps, images) each
    units = int(np.prod(flags.shape[2:]))
    out = {}
    for fraction in fractions:
        k = max(1, int(round(fraction * units / step)))
        interval = bootstrap_pearson(sums[k - 1], deltas[k - 1]).as_dict()
        out[f"{fraction:g}"] = {"units": k * step, "share": round(k * step / units, 4), **interval}
    return out


def compare(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Means, paired difference (ours − theirs) with intervals and the Spearman agreement per image."""
    return {
        "ours": bootstrap_mean(ours).as_dict(),
        "quantus": bootstrap_mean(theirs).as_dict(),
        "difference": paired_difference(ours, theirs).as_dict(),
        "spearman": round(spearman_finite(ours, theirs), 4),
        "per_image_ours": to_list(ours),
        "per_image_quantus": to_list(theirs),
    }


@dataclass
class Setup:
    """What every method's evaluation shares: data, score functions and the (memoising) Quantus models.

    Attributes
    ----------
    twin : dmbp_onnx.Twin
        The demo model.
    x : torch.Tensor
        ``(N, 3, H, W)`` normalised images.
    targets : numpy.ndarray
        Predicted class per image.
    masks : numpy.ndarray
        ``(N, H, W)`` bool object masks.
    subsets : int
        Random subsets per image and fraction.
    scorer : CachedScorer
        Our score function, memoised across methods (our subsets do not depend on the map).
    units : dict of int to UnitMasked
        Quantus's model on pixel (1) and patch (:data:`PATCH`) keep flags.
    images : TwinModule
        Quantus's model on the images themselves.
    """

    twin: object
    x: torch.Tensor
    targets: np.ndarray
    masks: np.ndarray
    subsets: int
    scorer: CachedScorer = field(init=False)
    units: dict[int, UnitMasked] = field(init=False)
    images: TwinModule = field(init=False)

    def __post_init__(self) -> None:
        self.scorer = CachedScorer(metrics.target_scorer(self.twin, self.targets))
        self.units = {patch: UnitMasked(self.twin, self.x, patch) for patch in (1, PATCH)}
        self.images = TwinModule(self.twin)


def evaluate_method(maps: np.ndarray, setup: Setup) -> dict:
    """Every comparison for one method's ``(N, H, W)`` maps."""
    x, targets = setup.x, setup.targets
    xs = x.numpy()
    out: dict[str, dict] = {"faithfulness": {}, "noise": {}, "elements": {}, "sensitivity_n": {}}
    for patch, model in setup.units.items():
        unit = "px" if patch == 1 else f"{patch}x{patch}"
        a, flags = unit_maps(maps, patch), model.flags()
        n_units = int(np.prod(flags.shape[2:]))
        kw = dict(n_subsets=setup.subsets, patch=None if patch == 1 else patch, batch_size=256)
        ours = metrics.sensitivity_n(setup.scorer, x, maps, FRACTIONS, seed=0, **kw)
        again = metrics.sensitivity_n(setup.scorer, x, maps, FRACTIONS, seed=1, **kw)
        for k, fraction in enumerate(FRACTIONS):
            key = f"{unit}_{fraction:g}"
            size = max(1, int(round(fraction * n_units)))
            theirs = quantus_faithfulness(model, flags, a, targets, size, setup.subsets, seed=k)
            out["faithfulness"][key] = compare(ours[fraction].per_image, theirs)
            out["noise"][key] = compare(ours[fraction].per_image, again[fraction].per_image)
            # Quantus on the image itself: its features are channel values, and it refuses a subset of
            # H * W values or more (its check counts pixels), so the 50 % fraction is left out.
            if patch == 1 and size * x.shape[1] < n_units:
                elements = quantus_faithfulness(setup.images, xs, maps[:, None], targets, size * x.shape[1],
                                                setup.subsets, seed=k)
                out["elements"][key] = compare(ours[fraction].per_image, elements)
        out["sensitivity_n"][unit] = quantus_sensitivity_n(model, a, targets, SENS_N_STEPS[patch], FRACTIONS)
    defaults = quantus_defaults(setup.images, xs, maps[:, None], targets, seed=0)
    out["quantus_defaults"] = bootstrap_mean(defaults).as_dict() | {"per_image": to_list(defaults)}
    out["pointing"] = pointing(maps, xs, targets, setup.masks)
    return out


def pointing(maps: np.ndarray, xs: np.ndarray, targets: np.ndarray, masks: np.ndarray) -> dict:
    """Our pointing game (default tolerance and tolerance 0) against Quantus's, per image."""
    metric = quantus.PointingGame(abs=False, normalise=False, disable_warnings=True)
    theirs = np.asarray(metric(model=None, x_batch=xs, y_batch=targets, a_batch=maps[:, None],
                               s_batch=masks[:, None].astype(np.float32), batch_size=len(xs)), dtype=np.float64)
    flat = maps.reshape(len(maps), -1)
    tied = (flat == flat.max(1, keepdims=True)).sum(1) > 1
    return {
        "default": compare(metrics.pointing_game(maps, masks).hits.astype(np.float64), theirs),
        "tolerance_0": compare(metrics.pointing_game(maps, masks, tolerance_px=0.0).hits.astype(np.float64), theirs),
        "tied_maxima": int(tied.sum()),
    }


def pooled(results: dict[str, dict]) -> dict[str, dict]:
    """Agreement over every method at once, per comparison and unit/fraction.

    ``spearman``: of the per-image scores pooled over the methods (images x methods pairs);
    ``method_rank``: of the methods' means (does Quantus order the methods as ours does).
    """
    out: dict[str, dict] = {}
    for part in ("faithfulness", "noise", "elements"):
        out[part] = {}
        for key in next(iter(results.values()))[part]:
            rows = [r[part][key] for r in results.values()]
            ours = np.concatenate([from_list(c["per_image_ours"]) for c in rows])
            theirs = np.concatenate([from_list(c["per_image_quantus"]) for c in rows])
            means = [(c["ours"]["mean"], c["quantus"]["mean"]) for c in rows]
            out[part][key] = {"spearman": round(spearman_finite(ours, theirs), 4),
                              "method_rank": round(metrics.spearman(*np.array(means, dtype=np.float64).T), 4)}
    out["sensitivity_n"] = {}
    for unit, values in next(iter(results.values()))["sensitivity_n"].items():
        for fraction in values:
            means = [(r["faithfulness"][f"{unit}_{fraction}"]["ours"]["mean"], r["sensitivity_n"][unit][fraction]["mean"])
                     for r in results.values()]
            out["sensitivity_n"][f"{unit}_{fraction}"] = {
                "method_rank": round(metrics.spearman(*np.array(means, dtype=np.float64).T), 4)}
    return out


# --------------------------------------------------------------------------- report


def _c(summary: dict) -> str:
    """``mean [low, high]`` of an ``Interval.as_dict()``."""
    values = [np.nan if summary.get(k) is None else summary[k] for k in ("mean", "low", "high")]
    return str(Interval(*values, summary.get("n", 0)))


def markdown(store: dict) -> list[str]:
    """The report: tables of every comparison, one row per method and unit/fraction."""
    s, results = store["settings"], store["results"]
    lines = [
        "# Our metrics next to Quantus (benchmarks/quality_quantus.py)", "",
        f"Demo model, {s['images']} held-out images, predicted class, raw logit, baseline 0 after normalisation "
        f"(the mean colour); {s['subsets']} random subsets per image and fraction; Quantus {s['quantus']}. "
        "Cells: mean over images [95 % bootstrap interval]; differences are paired per image (ours − Quantus); "
        "ρ: Spearman rank agreement of the per-image scores.", "",
        f"Run: `{store['run']['command']}` on {store['run']['machine']}, {store['run']['threads']} thread(s), "
        f"torch {store['run']['torch']}, {store['run']['seconds']} s.", "",
        "## Random-subset sensitivity-n = Quantus FaithfulnessCorrelation", "",
        "Quantus on our units (one keep-flag per pixel or 4x4 patch, `UnitMasked`). The noise columns compare "
        "ours with ours under a second seed: the same estimator, other random subsets.", "",
        "| method | unit, n | ours | Quantus | ours − Quantus | ρ | noise: ours − ours (seed 1) | noise ρ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        for key, c in r["faithfulness"].items():
            noise = r["noise"][key]
            unit, fraction = key.split("_")
            lines.append(f"| {LABELS[name]} | {unit} {float(fraction):.0%} | {_c(c['ours'])} | {_c(c['quantus'])} | "
                         f"{_c(c['difference'])} | {c['spearman']:.3f} | {_c(noise['difference'])} | "
                         f"{noise['spearman']:.3f} |")
    pool = store["pooled"]
    lines += ["", "Pooled over the methods: ρ of the per-image scores (images x methods) and ρ of the methods' means "
              "(do both order the methods alike):", "",
              "| unit, n | ρ ours–Quantus | noise ρ ours–ours | method order ρ |", "|---|---|---|---|"]
    for key, v in pool["faithfulness"].items():
        unit, fraction = key.split("_")
        lines.append(f"| {unit} {float(fraction):.0%} | {v['spearman']:.3f} | {pool['noise'][key]['spearman']:.3f} | "
                     f"{v['method_rank']:.2f} |")
    lines += ["", "Quantus on the image itself (its features are channel values: a subset of 3k values instead of k "
              "pixels), our other settings; and Quantus's defaults (224 values, 100 runs, baseline \"black\" = each "
              "image's minimum, max-normalised map):", "",
              "| method | n | ours (pixels) | Quantus (channel values) | ours − Quantus | ρ |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        for key, c in r["elements"].items():
            lines.append(f"| {LABELS[name]} | {float(key.split('_')[1]):.0%} | {_c(c['ours'])} | {_c(c['quantus'])} "
                         f"| {_c(c['difference'])} | {c['spearman']:.3f} |")
        lines.append(f"| {LABELS[name]} | Quantus defaults | | {_c(r['quantus_defaults'])} | | |")
    for key, v in pool["elements"].items():
        lines.append(f"| pooled | {float(key.split('_')[1]):.0%} | | | | {v['spearman']:.3f} |")
    lines += ["", "## Quantus SensitivityN (ordered, cumulative; Pearson across the images per n)", "",
              "Not our estimand: ours draws random subsets and correlates within each image. Interval: bootstrap "
              "over images.", "",
              "| method | unit | n | Quantus SensitivityN | ours (per-image mean) |", "|---|---|---|---|---|"]
    for name, r in results.items():
        for unit, values in r["sensitivity_n"].items():
            for fraction, v in values.items():
                ours = r["faithfulness"][f"{unit}_{fraction}"]["ours"]
                lines.append(f"| {LABELS[name]} | {unit} | {v['units']} ({v['share']:.1%}) | {_c(v)} | "
                             f"{_c(ours)} |")
    lines += ["", "Method order, Quantus SensitivityN vs ours (Spearman of the means): " + ", ".join(
        f"{k.replace('_', ' ')}: {v['method_rank']:.2f}" for k, v in pool["sensitivity_n"].items()) + "."]
    lines += ["", "## Pointing game", "",
              "Ours: tolerance 15 px at 224 px (4.3 px here), every maximal pixel must be within it; Quantus: no "
              "tolerance, any maximal pixel on the object is a hit.", "",
              "| method | ours | ours, tolerance 0 | Quantus | ours − Quantus | ours (tol. 0) − Quantus | "
              "maps with tied maxima |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        p = r["pointing"]
        lines.append(f"| {LABELS[name]} | {_c(p['default']['ours'])} | {_c(p['tolerance_0']['ours'])} | "
                     f"{_c(p['default']['quantus'])} | {_c(p['default']['difference'])} | "
                     f"{_c(p['tolerance_0']['difference'])} | {p['tied_maxima']} |")
    return lines + [""]


def parse_args() -> argparse.Namespace:
    """Command-line options; ``--quick`` changes the defaults to :data:`QUICK`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"small settings for a smoke run: {QUICK}")
    parser.add_argument("--images", type=int, default=64, help="demo test images")
    parser.add_argument("--subsets", type=int, default=64, help="random subsets per image and fraction")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default benchmarks/results/"
                        "quality_quantus.json; --quick: results/quick/); the Markdown goes beside it")
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(**QUICK)
    return parser.parse_args()


def main() -> None:
    """Attribute with every row, score the maps with both implementations, write JSON and Markdown."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    twin, x, _, masks, _ = demo_data(args.images)
    setup = Setup(twin, x, predicted(twin, x), masks, args.subsets)
    results = {}
    for name, build in method_builders().items():
        t0 = time.perf_counter()
        attribution = build(twin).attribute(x, [int(t) for t in setup.targets])
        results[name] = evaluate_method(np.asarray(attribution.pixel_map(), dtype=np.float64), setup)
        f = results[name]["faithfulness"]
        print(f"{name}: " + ", ".join(f"{k} {v['difference']['mean']:+.3f} (rho {v['spearman']:.2f})"
                                     for k, v in f.items()) + f" ({time.perf_counter() - t0:.0f} s)", flush=True)
    path = args.out or (RESULTS / "quick" if args.quick else RESULTS) / "quality_quantus.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    store = {
        "settings": {"images": args.images, "subsets": args.subsets, "fractions": list(FRACTIONS), "patch": PATCH,
                     "sens_n_steps": {str(k): v for k, v in SENS_N_STEPS.items()}, "quantus": quantus.__version__},
        "run": {"command": "python benchmarks/quality_quantus.py " + " ".join(sys.argv[1:]),
                "machine": platform.machine() + " CPU", "threads": args.threads, "torch": torch.__version__,
                "seconds": round(time.perf_counter() - start, 1)},
        "results": results,
        "pooled": pooled(results),
    }
    path.write_text(jsonio.dumps(store, indent=1))
    path.with_suffix(".md").write_text("\n".join(markdown(store)) + "\n")
    print(f"wrote {path} and {path.with_suffix('.md')}", flush=True)


if __name__ == "__main__":
    main()

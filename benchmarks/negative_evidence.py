"""Negative maps against known negative evidence: a distractor object whose removal raises the target.

Nobody can check a negative map on ordinary data: there is no ground truth for evidence
*against* a class. This benchmark builds one on the demo model (``dmbp_onnx/data/demo.onnx``).

Data. Candidate ``i`` takes image ``i`` of the held-out test split of ``models/demo/shapes.py``
(the *target* object, its mask and class) and pastes onto it the object of image ``i`` of a second
split (seed :data:`DISTRACTOR_SEED`): that object's pixels, with their colour and shading, are
translated to a random position where they lie inside the image and at least :data:`GAP` pixels
from the target object (no overlap). A candidate is dropped when both objects have the same class,
when no free position is found, when the model no longer predicts the target class, or when the
distractor is not measurably evidence against the target: removing it must raise the target logit
``z`` by at least :data:`MIN_RISE` (5 %) of ``|z|`` *both* when its pixels are restored to the
background they cover ("removal") and when they are set to the baseline value 0 of the normalised
input, i.e. the dataset's mean colour ("fill", the reference of Gradient x Input and Integrated
Gradients). Requiring both keeps the ground truth independent of which reference one prefers.
Candidates are read in order until ``--images`` are kept, so a smaller run is a prefix of a larger.

Negative maps. DMBP: ``attribution.negative`` summed over channels. Gradient x Input, Integrated
Gradients (32 steps, baseline 0) and, where zennit is installed, LRP EpsilonGammaBox: their negative
parts ``min(signed, 0)`` summed over channels.
The *mass* of a map is its absolute value.

Scores, per image (an all-zero map scores 0 on each of the first four):

* ``mass_share``: share of the negative map's mass on the distractor's mask;
* ``target_share``: share of the negative map's mass on the *target* object's mask (a diagnostic:
  mass there is not evidence against the target, since occluding the target lowers its logit);
* ``pointing``: the negative map's minimum lies on the distractor, within the pointing game's
  tolerance (:func:`dmbp_onnx.metrics.pointing_game` on ``-neg``: 15 px at 224 px, 4.3 px here;
  when several pixels share the minimum, all must lie within it, so an all-zero map misses);
* ``patch_spearman``: Spearman correlation over the 8x8 patches between the patch's negative mass
  and its occlusion effect (target logit with the patch set to the baseline 0, minus the logit);
  0 where the negative mass is the same on every patch (no ranking);
* ``empty``: the negative map's mass is under 1 % of the signed map's mass;
* ``wrong_sign``: share of the negative map's mass that is positive (only DMBP can have any).

A *uniform* reference row gives what a structureless map would score: the distractor's share of
the image for ``mass_share`` (the target's for ``target_share``) and the share of pixels within
the tolerance of the distractor for ``pointing``. Every figure is a mean over the kept images with
a 95 % bootstrap interval (:func:`dmbp_onnx.metrics.bootstrap_mean`), and each DMBP setting is
compared with each baseline by the paired per-image difference
(:func:`dmbp_onnx.metrics.paired_difference`).

DMBP runs at its defaults (``DMBP(twin, seed=0)``) and in any named :data:`VARIANTS`
(``--variants``) plus an ad-hoc setting ``--dmbp-options '{"lam": 0}'`` (passed through unchanged).

Results: ``benchmarks/results/negative_evidence.json`` (strict JSON, NaN as null) and ``.md``.
Run: ``python benchmarks/negative_evidence.py [--quick] [--images N] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import binary_dilation, distance_transform_edt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dmbp_onnx  # noqa: E402
from dmbp_onnx import metrics  # noqa: E402
from dmbp_onnx.errors import InputError  # noqa: E402
from dmbp_onnx.methods import LRP, DMBP, Attribution, GradientXInput, IntegratedGradients  # noqa: E402
from dmbp_onnx.preprocess import PreprocessConfig  # noqa: E402
from models.demo.shapes import CLASS_NAMES, TEST_SEED, make_example  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
DEMO = ROOT / "dmbp_onnx" / "data" / "demo.onnx"
#: Seed of the split whose objects become distractors (neither the training nor the test seed).
DISTRACTOR_SEED = TEST_SEED + 1
#: Smallest gap, in pixels, between the distractor and the target object.
GAP = 3
#: Random positions tried for the distractor before the candidate is dropped.
PLACEMENT_TRIES = 200
#: Removing the distractor must raise the target logit by this share of its magnitude.
MIN_RISE = 0.05
#: Side of the occlusion patches of the patch-level Spearman score.
PATCH = 8
#: A negative map with less than this share of the signed map's mass counts as empty.
EMPTY_SHARE = 0.01
IG_STEPS = 32
#: Candidates read per requested image at most (about one in five is kept).
CANDIDATES_PER_IMAGE = 20
#: Score -> Markdown column label.
SCORES = {
    "mass_share": "mass share",
    "target_share": "target share",
    "pointing": "pointing",
    "patch_spearman": "patch Spearman",
    "empty": "empty",
    "wrong_sign": "wrong sign",
}
#: Baselines whose negative parts are compared; LRP EpsilonGammaBox (zennit) where zennit is installed.
BASELINES = ("gradxinput", "ig") + (("lrp_gammabox",) if importlib.util.find_spec("zennit") else ())

_R1 = {"objective": "r1", "iterations": 100, "lr": 0.05, "path_steps": 1, "rule": "gradient"}
#: Named DMBP settings for comparison, passed as ``DMBP(twin, seed=0, **options)``. Apart from
#: "default" they are spelled out in full, so they stay fixed while DMBP's defaults change.
VARIANTS: dict[str, dict] = {
    "default": {},
    "r1-lam5": dict(_R1, lam=5.0),
    "r1-lam0": dict(_R1, lam=0.0),
    "perset-path8": dict(_R1, objective="perset", path_steps=8, lam=0.3, lam_neg=0.15),
    "threeway": dict(_R1, objective="threeway", lr=0.1),
    "gradient-rule": {"rule": "gradient"},
    "lrp-gamma": {"rule": "lrp-gamma"},
    "lrp-gamma-gradient-negative": {"rule": "lrp-gamma", "negative_rule": "gradient"},
    "lrp-gamma-per-filter": {"rule": "lrp-gamma", "regions": 1},
}


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Scene:
    """One composed candidate image.

    Attributes
    ----------
    image : numpy.ndarray
        uint8 (H, W, 3): the target object with the distractor pasted on.
    clean : numpy.ndarray
        uint8 (H, W, 3): the same image without the distractor (the demo example itself).
    target_mask, distractor_mask : numpy.ndarray
        bool (H, W) masks of the two objects (disjoint, at least :data:`GAP` pixels apart).
    label, distractor_label : int
        Classes of the two objects (different).
    """

    image: np.ndarray
    clean: np.ndarray
    target_mask: np.ndarray
    distractor_mask: np.ndarray
    label: int
    distractor_label: int


def place(
    target_mask: np.ndarray, object_mask: np.ndarray, rng: np.random.Generator
) -> tuple[int, int] | None:
    """A random shift ``(dy, dx)`` keeping ``object_mask`` inside the image and ``GAP`` px from the target.

    Parameters
    ----------
    target_mask, object_mask : numpy.ndarray
        bool (H, W) masks.
    rng : numpy.random.Generator
        Source of the candidate shifts.

    Returns
    -------
    tuple of int or None
        The first of :data:`PLACEMENT_TRIES` uniform shifts that fits, or None.
    """
    blocked = binary_dilation(target_mask, iterations=GAP)
    ys, xs = np.nonzero(object_mask)
    height, width = object_mask.shape
    for _ in range(PLACEMENT_TRIES):
        dy = int(rng.integers(-ys.min(), height - ys.max()))
        dx = int(rng.integers(-xs.min(), width - xs.max()))
        if not blocked[ys + dy, xs + dx].any():
            return dy, dx
    return None


def compose(index: int) -> Scene | str:
    """Candidate ``index``: test image ``index`` plus the object of distractor image ``index``.

    Returns
    -------
    Scene or str
        The scene, or why there is none: "same_class" (both objects have the same class) or
        "no_room" (no free position for the distractor).
    """
    clean, target_mask, label = make_example(TEST_SEED, index)
    source, source_mask, distractor_label = make_example(DISTRACTOR_SEED, index)
    if distractor_label == label:
        return "same_class"
    shift = place(target_mask, source_mask, np.random.default_rng([DISTRACTOR_SEED, index]))
    if shift is None:
        return "no_room"
    ys, xs = np.nonzero(source_mask)
    image = clean.copy()
    image[ys + shift[0], xs + shift[1]] = source[ys, xs]
    distractor_mask = np.zeros_like(source_mask)
    distractor_mask[ys + shift[0], xs + shift[1]] = True
    return Scene(image, clean, target_mask, distractor_mask, label, int(distractor_label))


def rises(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Target-logit rises of removal and fill from ``(N, 3)`` logits (image, clean, filled)."""
    return logits[:, 1] - logits[:, 0], logits[:, 2] - logits[:, 0]


def kept(predicted: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The dataset rule: target still predicted and both rises at least ``MIN_RISE |z|``.

    Parameters
    ----------
    predicted, labels : numpy.ndarray
        ``(N,)`` predicted class of the composed image and the target class.
    logits : numpy.ndarray
        ``(N, 3)`` target logit of the composed image, the clean image and the filled image.
    """
    removal, fill = rises(logits)
    margin = MIN_RISE * np.abs(logits[:, 0])
    return (predicted == labels) & (removal >= margin) & (fill >= margin)


@dataclass
class Dataset:
    """The kept images, as model inputs, with their ground truth.

    Attributes
    ----------
    x : torch.Tensor
        ``(N, 3, H, W)`` normalised composed images.
    labels : numpy.ndarray
        ``(N,)`` target classes (also the predicted classes).
    target_masks, distractor_masks : numpy.ndarray
        bool ``(N, H, W)``.
    logits : numpy.ndarray
        ``(N, 3)`` target logit of the image, of the clean image and of the filled image.
    candidates : numpy.ndarray
        ``(N,)`` candidate index of each kept image.
    counts : dict
        How many candidates were read and why each dropped one was dropped.
    """

    x: torch.Tensor
    labels: np.ndarray
    target_masks: np.ndarray
    distractor_masks: np.ndarray
    logits: np.ndarray
    candidates: np.ndarray
    counts: dict


def _normalised(config: PreprocessConfig, images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([config.normalise(i.astype(np.float32)) for i in images]))


def _screen(twin, config: PreprocessConfig, scenes: list[Scene]) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Inputs, predicted classes and ``(N, 3)`` target logits (image, clean, filled) of ``scenes``."""
    x = _normalised(config, [s.image for s in scenes])
    clean = _normalised(config, [s.clean for s in scenes])
    fill = x * ~torch.from_numpy(np.stack([s.distractor_mask for s in scenes]))[:, None]
    rows = torch.arange(len(scenes))
    labels = torch.tensor([s.label for s in scenes])
    with torch.no_grad():
        out = [twin(v) for v in (x, clean, fill)]
    logits = torch.stack([o[rows, labels] for o in out], 1).numpy()
    return x, out[0].argmax(1).numpy(), logits


def build_dataset(twin, images: int, batch: int = 64) -> Dataset:
    """Read candidates in order until ``images`` are kept (or the candidate budget is spent)."""
    config = PreprocessConfig.from_model(twin.model)
    limit = images * CANDIDATES_PER_IMAGE
    outcomes: list[str] = []
    parts: list[tuple] = []
    while outcomes.count("kept") < images and len(outcomes) < limit:
        composed = [compose(i) for i in range(len(outcomes), min(len(outcomes) + batch, limit))]
        scenes = [s for s in composed if isinstance(s, Scene)]
        verdicts: list[str] = []
        if scenes:
            x, predicted, logits = _screen(twin, config, scenes)
            labels = np.array([s.label for s in scenes])
            keep = kept(predicted, labels, logits)
            verdicts = np.where(keep, "kept", np.where(predicted == labels, "small_rise", "not_predicted")).tolist()
            chosen = np.flatnonzero(keep)
            parts.append((x[chosen], [scenes[i] for i in chosen], logits[chosen]))
        verdict = iter(verdicts)
        outcomes += [c if isinstance(c, str) else next(verdict) for c in composed]
    return _merge_parts(parts, outcomes, images)


def _merge_parts(parts: list[tuple], outcomes: list[str], images: int) -> Dataset:
    """The first ``images`` kept images; counts cover the candidates up to the last of them.

    ``outcomes`` holds, per candidate read, "kept" or why it was dropped.
    """
    candidates = np.flatnonzero(np.array(outcomes) == "kept")[:images]
    read = int(candidates[-1]) + 1 if len(candidates) == images else len(outcomes)
    counts = {"candidates": read}
    counts.update({k: outcomes[:read].count(k) for k in ("same_class", "no_room", "not_predicted", "small_rise")})
    counts["kept"] = len(candidates)
    scenes = [s for p in parts for s in p[1]][:images]
    return Dataset(
        x=torch.cat([p[0] for p in parts])[:images],
        labels=np.array([s.label for s in scenes]),
        target_masks=np.stack([s.target_mask for s in scenes]),
        distractor_masks=np.stack([s.distractor_mask for s in scenes]),
        logits=np.concatenate([p[2] for p in parts])[:images],
        candidates=candidates,
        counts=counts,
    )


# --------------------------------------------------------------------------- scores


def patch_effects(twin, x: torch.Tensor, labels: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """``(N, H/patch, W/patch)``: target-logit rise when each patch is set to the baseline 0."""
    n, _, height, width = x.shape
    grid = (height // patch, width // patch)
    score = metrics.target_scorer(twin, labels)
    out = np.empty((n, *grid))
    for i in range(n):
        occluded = x[i].repeat(grid[0] * grid[1], 1, 1, 1)
        for k in range(grid[0] * grid[1]):
            r, c = divmod(k, grid[1])
            occluded[k, :, r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = 0.0
        batch = torch.cat([x[i : i + 1], occluded])
        z = score(batch, torch.full((len(batch),), i)).cpu().numpy()
        out[i] = (z[1:] - z[0]).reshape(grid)
    return out


def patch_sums(maps: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """``(N, H/patch, W/patch)`` sums of ``(N, H, W)`` maps over non-overlapping patches."""
    n, height, width = maps.shape
    return maps.reshape(n, height // patch, patch, width // patch, patch).sum((2, 4))


def negative_scores(attribution: Attribution, data: Dataset, effects: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image :data:`SCORES` of one attribution's negative map (see the module docstring)."""
    neg = attribution.pixel_map("negative").astype(np.float64)
    signed = attribution.pixel_map("signed").astype(np.float64)
    mass = np.abs(neg)
    total = mass.reshape(len(neg), -1).sum(1)

    def share(values: np.ndarray) -> np.ndarray:
        per_image = values.reshape(len(neg), -1).sum(1)
        return np.divide(per_image, total, out=np.zeros_like(total), where=total > 0)

    pointing = metrics.pointing_game(-neg, data.distractor_masks).hits.astype(np.float64)
    patch_mass = patch_sums(mass)
    spearman = np.array([metrics.spearman(m, e) for m, e in zip(patch_mass, effects)])
    empty = total < EMPTY_SHARE * np.abs(signed).reshape(len(neg), -1).sum(1)
    return {
        "mass_share": share(mass * data.distractor_masks),
        "target_share": share(mass * data.target_masks),
        "pointing": pointing,
        "patch_spearman": np.nan_to_num(spearman, nan=0.0),
        "empty": empty.astype(np.float64),
        "wrong_sign": share(np.maximum(neg, 0.0)),
    }


def uniform_scores(data: Dataset) -> dict[str, np.ndarray]:
    """What a structureless map scores: the distractor's area share and its pointing chance."""
    masks = data.distractor_masks
    n = len(masks)
    tolerance = metrics.pointing_game(masks.astype(np.float64), masks).tolerance  # the game's own
    near = np.stack([distance_transform_edt(~m) <= tolerance for m in masks])
    return {
        "mass_share": masks.reshape(n, -1).mean(1),
        "target_share": data.target_masks.reshape(n, -1).mean(1),
        "pointing": near.reshape(n, -1).mean(1),
    }


# --------------------------------------------------------------------------- methods


def baselines(twin) -> dict[str, object]:
    """The compared baselines: name -> method."""
    found = {"gradxinput": GradientXInput(twin), "ig": IntegratedGradients(twin, steps=IG_STEPS)}
    if "lrp_gammabox" in BASELINES:
        found["lrp_gammabox"] = LRP(twin, composite="epsilon_gamma_box")
    return found


def dmbp_settings(names: list[str], custom: dict | None) -> dict[str, dict]:
    """DMBP settings to run: the named :data:`VARIANTS` plus ``custom`` as "custom"."""
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown DMBP variant(s) {unknown}; choose from {list(VARIANTS)}")
    settings = {f"dmbp {n}": VARIANTS[n] for n in names}
    if custom is not None:
        settings["dmbp custom"] = custom
    return settings


def run_method(name: str, method, data: Dataset, effects: np.ndarray) -> tuple[dict, dict[str, np.ndarray]]:
    """Attribute the kept images, score the negative maps; return the report entry and per-image scores."""
    start = time.perf_counter()
    attribution = method.attribute(data.x, [int(t) for t in data.labels])
    seconds = time.perf_counter() - start
    per_image = negative_scores(attribution, data, effects)
    entry = {
        "options": {k: v for k, v in method.options.items() if k != "device"},
        "seconds": round(seconds, 2),
        "seconds_per_image": round(seconds / len(data.x), 4),
        "scores": {k: metrics.bootstrap_mean(v).as_dict() for k, v in per_image.items()},
    }
    print(f"  {name}: {summary(per_image)}  ({seconds:.0f} s)", flush=True)
    return entry, per_image


def summary(per_image: dict[str, np.ndarray]) -> str:
    """One line: every score with its interval."""
    return ", ".join(f"{k} {metrics.bootstrap_mean(v)}" for k, v in per_image.items())


def paired(per_method: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, dict]]:
    """DMBP-minus-baseline paired differences: ``"dmbp X - baseline" -> score -> interval``."""
    out = {}
    for name in (m for m in per_method if m.startswith("dmbp")):
        for base in BASELINES:
            out[f"{name} - {base}"] = {
                k: metrics.paired_difference(per_method[name][k], per_method[base][k]).as_dict()
                for k in SCORES
            }
    return out


# --------------------------------------------------------------------------- report


def dataset_report(data: Dataset) -> dict:
    """The dataset rule's counts and the ground truth's magnitudes."""
    removal, fill = rises(data.logits)
    z = np.abs(data.logits[:, 0])
    return {
        "rule": (
            f"target predicted; removing the distractor raises the target logit by >= {MIN_RISE:.0%} of "
            f"|logit| both when restored to the background and when filled with the baseline 0"
        ),
        "counts": data.counts,
        "logit": metrics.bootstrap_mean(data.logits[:, 0]).as_dict(),
        "relative_rise_removal": metrics.bootstrap_mean(removal / z).as_dict(),
        "relative_rise_fill": metrics.bootstrap_mean(fill / z).as_dict(),
        "distractor_area_px": metrics.bootstrap_mean(data.distractor_masks.reshape(len(z), -1).sum(1)).as_dict(),
        "target_classes": {CLASS_NAMES[c]: int((data.labels == c).sum()) for c in range(len(CLASS_NAMES))},
        "candidate_indices": data.candidates.tolist(),
    }


def _cell(d: dict | None) -> str:
    if d is None or d["mean"] is None:
        return ""
    if d["low"] is None:
        return f"{d['mean']:.3f}"
    return f"{d['mean']:.3f} [{d['low']:.3f}, {d['high']:.3f}]"


def write_markdown(report: dict, path: Path) -> None:
    """The scores and paired differences as Markdown tables."""
    data = report["dataset"]
    lines = [
        "# Negative maps against known negative evidence",
        "",
        f"Generated by `{report['command']}` on {report['machine']}, {report['threads']} thread(s), "
        f"{report['seconds']:.0f} s in all. Kept {data['counts']['kept']} of {data['counts']['candidates']} "
        f"candidates (dropped: {data['counts']['same_class']} same class, {data['counts']['no_room']} no room, "
        f"{data['counts']['not_predicted']} target not predicted, {data['counts']['small_rise']} rise too small). "
        f"Rule: {data['rule']}. Removing the distractor raises the logit by "
        f"{_cell(data['relative_rise_removal'])} of |logit| (fill: {_cell(data['relative_rise_fill'])}).",
        "",
        "Means over images with 95 % bootstrap intervals; target share, empty and wrong sign: lower is better.",
        "",
        f"| method | {' | '.join(SCORES.values())} | s / image |",
        "|---" * (len(SCORES) + 2) + "|",
    ]
    for name, entry in report["methods"].items():
        s = entry["scores"]
        cells = [_cell(s.get(k)) for k in SCORES]
        lines.append(f"| {name} | {' | '.join(cells)} | {entry.get('seconds_per_image', '')} |")
    lines += [
        "",
        "Paired differences (DMBP minus baseline, same images):",
        "",
        f"| comparison | {' | '.join(SCORES.values())} |",
        "|---" * (len(SCORES) + 1) + "|",
    ]
    for name, scores in report["paired"].items():
        lines.append(f"| {name} | {' | '.join(_cell(scores[k]) for k in SCORES)} |")
    if report["errors"]:
        lines += ["", "Settings that failed:", ""] + [f"* {k}: {v}" for k, v in report["errors"].items()]
    path.write_text("\n".join(lines) + "\n")


def _strict(value):
    """``value`` with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="24 images (a few minutes on CPU)")
    parser.add_argument("--images", type=int, default=None, help="kept images (default 100, quick 24)")
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "negative_evidence.json", help="JSON path (.md beside it)"
    )
    parser.add_argument("--variants", default="default", help=f"comma-separated DMBP settings of {list(VARIANTS)}")
    parser.add_argument(
        "--dmbp-options", type=json.loads, default=None, help="extra DMBP setting as JSON, e.g. '{\"lam\": 0}'"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.images is None:
        args.images = 24 if args.quick else 100
    return args


def main(argv: list[str] | None = None) -> None:
    """Build the data set, run the methods, write the JSON and Markdown reports."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    twin = dmbp_onnx.load(DEMO)
    data = build_dataset(twin, args.images)
    effects = patch_effects(twin, data.x, data.labels)
    print(f"dataset: {data.counts} ({time.perf_counter() - start:.0f} s)", flush=True)
    methods = {name: lambda m=m: m for name, m in baselines(twin).items()}
    settings = dmbp_settings([v for v in args.variants.split(",") if v], args.dmbp_options)
    methods.update({name: lambda o=o: DMBP(twin, seed=0, **o) for name, o in settings.items()})
    entries, per_method, errors = {}, {}, {}
    for name, build in methods.items():
        try:
            entries[name], per_method[name] = run_method(name, build(), data, effects)
        except (TypeError, ValueError, InputError) as error:  # an option DMBP lacks
            errors[name] = f"{type(error).__name__}: {error}"
            print(f"  {name}: failed: {errors[name]}", flush=True)
    uniform = uniform_scores(data)
    entries["uniform (reference)"] = {"scores": {k: metrics.bootstrap_mean(v).as_dict() for k, v in uniform.items()}}
    report = {
        "command": "python benchmarks/negative_evidence.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.machine()} {platform.system()}",
        "threads": args.threads,
        "seconds": round(time.perf_counter() - start, 1),
        "dataset": dataset_report(data),
        "methods": entries,
        "paired": paired(per_method),
        "errors": errors,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_strict(report), indent=2, allow_nan=False) + "\n")
    write_markdown(report, args.out.with_suffix(".md"))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} ({report['seconds']:.0f} s)")


if __name__ == "__main__":
    main()

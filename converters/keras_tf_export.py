"""Export a small Keras ReLU CNN on the TensorFlow backend through tf2onnx.

Run in a separate venv (``pip install tensorflow-cpu tf2onnx``)::

    /work/venv-tf/bin/python converters/keras_tf_export.py

Writes ``keras_tf_cnn`` (the CNN of _keras_model.py: NHWC input, softmax head)
into tests/fixtures/foreign/. Keras 3's ``model.export(format="onnx")`` calls
``tf2onnx.convert.from_function`` on the serving function.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402

from _common import parse_args, save_fixture, seed_everything  # noqa: E402
from _keras_model import build  # noqa: E402


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    if keras.backend.backend() != "tensorflow":
        raise SystemExit(f"KERAS_BACKEND must be tensorflow, not {keras.backend.backend()}")
    tf.config.threading.set_intra_op_parallelism_threads(1)
    rng = seed_everything(args.seed)
    keras.utils.set_random_seed(args.seed)
    model = build(rng)
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        model.export(str(path), format="onnx", verbose=False)
        proto = onnx.load_model(path)
    save_fixture("keras_tf_cnn", proto, {"input": x, "output": y}, args.out_dir)


if __name__ == "__main__":
    main()

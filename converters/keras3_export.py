"""Export a small Keras 3 ReLU CNN through the torch backend's ONNX export.

Run in a separate venv (``pip install torch==2.13.0 keras onnx onnxscript``)::

    KERAS_BACKEND=torch /work/venv-keras3/bin/python converters/keras3_export.py

Writes ``keras3_torch_cnn`` (the CNN of _keras_model.py: NHWC input, softmax head)
into tests/fixtures/foreign/.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

from _common import parse_args, save_fixture, seed_everything  # noqa: E402
from _keras_model import build  # noqa: E402


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    if keras.backend.backend() != "torch":
        raise SystemExit(f"KERAS_BACKEND must be torch, not {keras.backend.backend()}")
    torch.set_num_threads(1)
    rng = seed_everything(args.seed)
    keras.utils.set_random_seed(args.seed)
    model = build(rng)
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    y = keras.ops.convert_to_numpy(model(x, training=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            model.export(str(path), format="onnx", verbose=False)
        proto = onnx.load_model(path)
    save_fixture("keras3_torch_cnn", proto, {"input": x, "output": y}, args.out_dir)


if __name__ == "__main__":
    main()

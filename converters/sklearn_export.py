"""Export a scikit-learn ReLU MLP classifier with skl2onnx, with and without ZipMap.

Run in a separate venv (``pip install scikit-learn skl2onnx``)::

    /work/venv-sk/bin/python converters/sklearn_export.py

Writes two fixtures, each with a label output first and probabilities second:

* ``sklearn_mlp``: skl2onnx's default; probabilities go through ai.onnx.ml
  ZipMap (a sequence of maps, not a tensor), labels through ArrayFeatureExtractor;
* ``sklearn_mlp_nozipmap``: ``options={'zipmap': False}``; probabilities are a
  float tensor, labels still use ai.onnx.ml ArrayFeatureExtractor (the MLP
  converter ignores the ``nocl`` option, so no variant avoids ai.onnx.ml).

In the .npz, ``output`` is ``predict_proba``, ``label`` is ``predict`` and
``outputs`` names those arrays in the ONNX graph's output order.
"""

from __future__ import annotations

import warnings

import numpy as np
from skl2onnx import to_onnx
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from _common import parse_args, save_fixture, seed_everything

N_FEATURES, N_CLASSES = 20, 4


def train(rng: np.random.Generator, seed: int) -> MLPClassifier:
    """A two-hidden-layer ReLU MLP fitted on a seeded synthetic problem."""
    x = rng.standard_normal((256, N_FEATURES)).astype(np.float32)
    w = rng.standard_normal((N_FEATURES, N_CLASSES))
    y = np.argmax(x @ w, axis=1)
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), activation="relu", max_iter=60, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    return clf


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    rng = seed_everything(args.seed)
    clf = train(rng, args.seed)
    x = rng.standard_normal((8, N_FEATURES)).astype(np.float32)
    arrays = {
        "input": x,
        "output": clf.predict_proba(x).astype(np.float32),
        "label": clf.predict(x).astype(np.int64),
        "outputs": np.array(["label", "output"]),
    }
    sample = x[:1]
    default = to_onnx(clf, sample, target_opset={"": 17, "ai.onnx.ml": 3})
    save_fixture("sklearn_mlp", default, arrays, args.out_dir)
    plain = to_onnx(clf, sample, target_opset={"": 17, "ai.onnx.ml": 3}, options={"zipmap": False})
    save_fixture("sklearn_mlp_nozipmap", plain, arrays, args.out_dir)


if __name__ == "__main__":
    main()

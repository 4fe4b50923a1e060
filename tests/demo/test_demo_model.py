"""The shipped demo model and samples: present, small, self-describing, and correct on the samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from dmbp_onnx.preprocess import PreprocessConfig, load_image

DATA = Path(__file__).resolve().parents[2] / "dmbp_onnx" / "data"
MODEL = DATA / "demo.onnx"


@pytest.fixture(scope="module")
def model() -> onnx.ModelProto:
    return onnx.load(str(MODEL))


@pytest.fixture(scope="module")
def samples() -> list[dict]:
    return json.loads((DATA / "samples.json").read_text())


def test_shipped_model_is_small_and_checked(model):
    assert MODEL.stat().st_size < 2 * 1024 * 1024
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["logits"]
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"Softmax", "Sigmoid", "Tanh"} and "Relu" in ops


def test_metadata_describes_preprocessing(model):
    meta = {p.key: p.value for p in model.metadata_props}
    names = json.loads(meta["dmbp.class_names"])
    assert meta["dmbp.layout"] == "NCHW" and meta["dmbp.size"] == "64,64" and meta["dmbp.output"] == "logits"
    cfg = PreprocessConfig.from_model(model)
    assert cfg.size == (64, 64) and cfg.scale == 255.0 and len(cfg.mean) == len(cfg.std) == 3
    assert cfg.class_names == tuple(names) and len(names) == 6


def test_samples_predicted_by_onnxruntime(model, samples):
    cfg = PreprocessConfig.from_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = np.concatenate([load_image(DATA / s["image"], cfg).array for s in samples])
    predicted = sess.run(["logits"], {"image": batch})[0].argmax(1)
    truth = [cfg.class_names.index(s["class"]) for s in samples]
    assert len(samples) >= 4 and len(set(truth)) == len(samples)
    assert (predicted == truth).sum() >= len(samples) - 1


def test_sample_masks_match_images(samples):
    for s in samples:
        image = np.asarray(Image.open(DATA / s["image"]).convert("RGB")).astype(float)
        mask = np.asarray(Image.open(DATA / s["mask"]).convert("L")) > 127
        assert mask.shape == image.shape[:2] and 40 < mask.sum() < mask.size // 2
        assert np.linalg.norm(image[mask].mean(0) - image[~mask].mean(0)) > 40

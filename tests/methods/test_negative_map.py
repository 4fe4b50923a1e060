"""DMBP's defaults keep a negative map wherever the model has negative evidence (issue: the negative
map was exactly zero at the old defaults on Keras/TF, JAX, PReLU and Paddle CNNs and on the demo).

Property, per image: if Gradient x Input's negative mass is at least 10 % of its total mass, DMBP's
negative map holds at least 1 % of DMBP's total mass, and no map collapses.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import dmbp_onnx
from dmbp_onnx.methods import DMBP, GradientXInput
from dmbp_onnx.metrics import empty_negative_maps, negative_share, signed_negative_share
from dmbp_onnx.metrics.negative import EVIDENCE_SHARE

FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"
CNN_FIXTURES = sorted(p.stem for p in FOREIGN.glob("*.onnx") if not p.stem.startswith("sklearn"))
DEMO = Path(dmbp_onnx.__file__).parent / "data" / "demo.onnx"
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "demo"))
from shapes import test_split as held_out_split  # noqa: E402  (not collected as a test)


#: DMBP's default rule, and the gradient rule (the paper's mapping).
RULES = [{}, {"rule": "gradient"}]


def assert_negative_map_where_evidence(twin, x: torch.Tensor, options: dict) -> None:
    result = DMBP(twin, device="cpu", **options).attribute(x)
    plain = GradientXInput(twin, device="cpu").attribute(x, target=result.target)
    plain_share = signed_negative_share(plain.pixel_map())
    share = negative_share(result.pixel_map("positive"), result.pixel_map("negative"))
    assert (plain_share >= EVIDENCE_SHARE).any() or len(x) == 0, "the property is vacuous on these inputs"
    empty = empty_negative_maps(share, plain_share)
    assert not empty.any(), f"empty negative maps: DMBP {share}, Gradient x Input {plain_share}"
    assert not result.extras["magnitudes"]["collapsed"].any()


@pytest.mark.parametrize("options", RULES, ids=["default", "gradient"])
@pytest.mark.parametrize("name", CNN_FIXTURES)
def test_foreign_fixture(name, options):
    twin = dmbp_onnx.load(FOREIGN / f"{name}.onnx")
    x = torch.from_numpy(np.load(FOREIGN / f"{name}.npz")["input"].astype(np.float32))
    assert_negative_map_where_evidence(twin, x, options)


@pytest.mark.parametrize("options", RULES, ids=["default", "gradient"])
def test_demo_model_on_held_out_images(options):
    from dmbp_onnx.preprocess import PreprocessConfig

    twin = dmbp_onnx.load(DEMO)
    config = PreprocessConfig.from_model(twin.model)
    images, _, _ = held_out_split(16)
    x = torch.from_numpy(np.concatenate([config.normalise(i.astype(np.float32)) for i in images]))
    assert_negative_map_where_evidence(twin, x, options)

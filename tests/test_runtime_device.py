"""One device-name rule for torch and onnxruntime: ``cuda:N`` is accepted by both."""

import onnx
import pytest
from onnx import helper

from dmbp_onnx.device import device_name
from dmbp_onnx.errors import InputError
from dmbp_onnx.runtime import make_session
from oracle import float_input, make_model


def test_device_names():
    assert [device_name(d) for d in ("auto", "cpu", "cuda", "cuda:0", "cuda:12")] == [
        "auto", "cpu", "cuda", "cuda:0", "cuda:12"
    ]  # fmt: skip
    for bad in ("gpu", "cuda:", "cuda:x", "tpu"):
        with pytest.raises(InputError, match="unknown device"):
            device_name(bad)


def test_a_session_accepts_cuda_with_an_index():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="r")], [float_input("x", [1, 2])], [float_input("y", [1, 2])]
    )
    session = make_session(model, device="cuda:0")  # falls back to the CPU where there is no CUDA provider
    assert session.get_providers()[-1] == "CPUExecutionProvider"
    with pytest.raises(InputError, match="unknown device"):
        make_session(onnx.ModelProto(), device="cuda:x")

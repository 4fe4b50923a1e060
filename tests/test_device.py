"""The one device rule shared by the methods, validation and the CLI."""

import pytest
import torch

from dmbp_onnx.device import resolve_device
from dmbp_onnx.errors import InputError


def test_auto_follows_what_torch_sees():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_names_and_devices_are_accepted():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_unknown_names_are_refused_by_name():
    with pytest.raises(InputError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused():
    for device in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device(device)

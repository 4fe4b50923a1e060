"""The one device module: the device rule shared by the methods, validation and the CLI, the
exact fp32 context, and moving the twin and arrays to and from a device."""

import numpy as np
import pytest
import torch

from dmbp_onnx.device import as_tensors, exact_fp32, on_device, resolve_device, to_numpy
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


def test_arrays_go_to_the_device_as_copies_and_come_back_as_numpy():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    (tensor,) = as_tensors([array], torch.device("cpu"))
    tensor += 1
    assert array[0, 0] == 0  # the caller's array is untouched
    np.testing.assert_array_equal(to_numpy(tensor), array + 1)
    np.testing.assert_array_equal(to_numpy(torch.ones(2, requires_grad=True)), np.ones(2))
    assert to_numpy([1, 2]).tolist() == [1, 2]


def test_exact_fp32_turns_tf32_off_and_restores_it():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with exact_fp32():
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


class _FakeTwin:
    """Records the devices it is moved to."""

    def __init__(self):
        self.device = torch.device("cpu")
        self.moves = []

    def to(self, device):
        self.moves.append(device)
        self.device = device
        return self


def test_on_device_runs_without_gradients_and_puts_the_twin_back():
    twin = _FakeTwin()
    target = torch.device("meta")
    with pytest.raises(RuntimeError, match="inside"), on_device(twin, target):
        assert twin.device == target and not torch.is_grad_enabled()
        raise RuntimeError("inside")
    assert twin.moves == [target, torch.device("cpu")] and torch.is_grad_enabled()

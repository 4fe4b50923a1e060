"""Devices: which one a job runs on (one rule for methods, validation and the CLI), running
the twin there with exact fp32 math, and moving arrays to and from it.

Torch is imported inside the functions: the device names are read by torch-free code (the CLI
parser, onnxruntime sessions).
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np

from dmbp_onnx.errors import InputError

if TYPE_CHECKING:
    import torch

    from dmbp_onnx.twin.twin import Twin

DEVICES = ("auto", "cpu", "cuda")
"""Device names the command line accepts (``cuda:N`` is accepted too)."""


def device_name(device: str) -> str:
    """``device`` when it is a device name the package accepts: one of :data:`DEVICES` or ``cuda:N``.

    Torch-free (onnxruntime sessions use it too).

    Raises
    ------
    InputError
        For any other name.
    """
    if device in DEVICES or re.fullmatch(r"cuda:\d+", device):
        return device
    raise InputError(f"unknown device '{device}'; expected one of {', '.join(DEVICES)} or cuda:N")


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when torch sees a GPU, else CPU.

    Raises
    ------
    InputError
        For an unknown device name, or a CUDA device when torch sees no CUDA GPU.
    """
    import torch  # here, not at module level: DEVICES is read by torch-free code (the CLI parser)

    if isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(device_name(device))
    if not isinstance(device, torch.device):
        raise InputError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{device}' requested, but torch sees no CUDA GPU")
    return device


def to_numpy(value: Any) -> np.ndarray:
    """``value`` as a numpy array (a tensor is detached and copied to the CPU)."""
    torch = sys.modules.get("torch")  # not imported: ``value`` is no tensor
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def as_tensors(arrays: Sequence[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    """Each array as a tensor on ``device`` (copied: the arrays stay the caller's)."""
    import torch

    return [torch.from_numpy(np.array(a)).to(device) for a in arrays]


@contextlib.contextmanager
def exact_fp32() -> Iterator[None]:
    """Disable TF32 (on by default for cuDNN convolutions) inside the block."""
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@contextlib.contextmanager
def on_device(twin: Twin, device: torch.device) -> Iterator[None]:
    """Run the twin on ``device`` without gradients and with exact fp32 math, then put it back where it was."""
    import torch

    original = twin.device
    twin.to(device)
    try:
        with torch.no_grad(), exact_fp32():
            yield
    finally:
        twin.to(original)

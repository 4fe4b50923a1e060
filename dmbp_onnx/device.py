"""Which torch device a job runs on: one rule for methods, validation and the CLI."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dmbp_onnx.errors import InputError

if TYPE_CHECKING:
    import torch

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

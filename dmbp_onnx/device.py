"""Which torch device a job runs on: one rule for methods, validation and the CLI."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dmbp_onnx.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
"""Device names the command line accepts (``cuda:N`` is accepted too)."""


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
        if device not in DEVICES and not re.fullmatch(r"cuda:\d+", device):
            raise InputError(f"unknown device '{device}'; expected one of {', '.join(DEVICES)}")
        device = torch.device(device)
    if not isinstance(device, torch.device):
        raise InputError(f"unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{device}' requested, but torch sees no CUDA GPU")
    return device

"""Run the twin on the requested device with exact fp32 math; move arrays to and from it."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from dmbp_onnx.twin.twin import Twin


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


@contextlib.contextmanager
def _exact_fp32() -> Iterator[None]:
    """Disable TF32 (on by default for cuDNN convolutions) while the twin runs."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@contextlib.contextmanager
def _on_device(twin: Twin, device: torch.device) -> Iterator[None]:
    """Run the twin on ``device`` with exact fp32 math, then put it back where it was."""
    original = twin.device
    twin.to(device)
    try:
        with torch.no_grad(), _exact_fp32():
            yield
    finally:
        twin.to(original)


def _as_tensors(arrays: Sequence[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    return [torch.from_numpy(np.array(a)).to(device) for a in arrays]

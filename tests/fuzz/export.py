"""Export a torch module to ONNX bytes through either torch exporter, quietly."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import torch
from torch import nn

LEGACY_OPSETS = tuple(range(11, 21))


def export(module: nn.Module, x: torch.Tensor, exporter: str, opset: int | None = None) -> bytes:
    """ONNX bytes of ``module`` traced on ``x``.

    Parameters
    ----------
    exporter : str
        ``"legacy"`` (TorchScript, ``dynamo=False``, at ``opset``) or ``"dynamo"``
        (``dynamo=True``, its default opset unless ``opset`` is given).
    """
    sink = io.StringIO()
    torch_logger = logging.getLogger("torch.onnx")
    level = torch_logger.level
    torch_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            if exporter == "legacy":
                buffer = io.BytesIO()
                torch.onnx.export(module, (x,), buffer, dynamo=False, opset_version=opset)
                return buffer.getvalue()
            kwargs = {} if opset is None else {"opset_version": opset}
            program = torch.onnx.export(module, (x,), dynamo=True, external_data=False, **kwargs)
            return program.model_proto.SerializeToString()
    finally:
        torch_logger.setLevel(level)

"""The attribution methods a request asks for, built on the twin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from dmbp_onnx.errors import InputError

if TYPE_CHECKING:
    from dmbp_onnx.explain.request import ExplainRequest


def _build_method(name: str, twin, request: ExplainRequest, device: torch.device):
    from dmbp_onnx.methods import METHODS

    if name not in METHODS:
        raise InputError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}")
    kwargs: dict[str, Any] = {"device": str(device)}
    if name == "dmbp":
        kwargs["progress"] = request.progress
        if request.iterations is not None:
            kwargs["iterations"] = request.iterations
        if request.rule is not None:
            kwargs["rule"] = request.rule
        if request.regions is not None:
            kwargs["regions"] = request.regions
    return METHODS[name](twin, **kwargs)

"""One fuzz example end to end: build, run in torch, export, check the twin.

:func:`check_example` is what the CI test and the nightly run share. It goes
through :func:`oracle.check_twin` (twin vs onnxruntime, and twin vs the torch
output). :func:`classify` names what disagreed after a failure, so that
exporter/onnxruntime discrepancies are told apart from twin bugs.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch

import dmbp_onnx
from fuzz.architectures import Arch, build, sample_input
from fuzz.export import export
from oracle import RTOL, check_twin, reference_outputs


def check_example(arch: Arch, exporter: str, opset: int | None) -> bytes:
    """Assert the twin of ``arch`` exported by ``exporter`` equals onnxruntime and torch.

    Returns the exported ONNX bytes.
    """
    module, x = build(arch), sample_input(arch)
    with torch.no_grad():
        expected = module(x).numpy()
    data = export(module, x, exporter, opset)
    check_twin(data, [x.numpy()], [expected], atol=ATOL)
    return data


# Float32 sums taken in another order differ by a few ulps of the largest partial sum.
ATOL = 1e-4


def classify(arch: Arch, data: bytes) -> str:
    """Which of twin, onnxruntime and torch disagree on ``arch``'s exported ``data``."""
    module, x = build(arch), sample_input(arch)
    with torch.no_grad():
        torch_out = module(x).numpy()
    try:
        twin = dmbp_onnx.load(data)
        with torch.no_grad():
            twin_out = twin(x).numpy()
    except Exception as exc:  # noqa: BLE001 - the classification names it
        return f"twin raised {type(exc).__name__}: {exc}"
    proto = onnx.load_model_from_string(data)
    try:
        ort_out = reference_outputs(proto, {proto.graph.input[0].name: x.numpy()})[0]
    except Exception as exc:  # noqa: BLE001
        verdict = "twin == torch" if _close(twin_out, torch_out) else "twin != torch"
        return f"onnxruntime raised ({verdict}): {str(exc).splitlines()[0]}"
    return (
        f"twin {'==' if _close(twin_out, ort_out) else '!='} onnxruntime, "
        f"twin {'==' if _close(twin_out, torch_out) else '!='} torch, "
        f"onnxruntime {'==' if _close(ort_out, torch_out) else '!='} torch"
    )


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=ATOL)

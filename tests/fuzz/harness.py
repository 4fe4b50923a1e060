"""One fuzz example end to end: build, run in torch, export, check the twin.

:func:`check_example` is what the CI test and the nightly run share. It goes
through :func:`oracle.check_twin` (twin vs onnxruntime, and twin vs the torch
output). :func:`classify` names what disagreed after a failure, so that
exporter/onnxruntime discrepancies are told apart from twin bugs.
:func:`known_issue` recognises the examples that hit a failure already pinned in
``test_regressions.py``: the fixed-seed CI test skips those (a newer hypothesis
may draw other examples), the nightly run labels them.
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


def known_issue(arch: Arch, exporter: str) -> str | None:
    """The pinned regression ``arch`` runs into with ``exporter``, if any."""
    if exporter == "legacy" and _drops_ceil_window(arch):
        return "test_ceil_pool_last_window_in_padding_twin_matches_torch"
    return None


def _drops_ceil_window(arch: Arch) -> bool:
    """Whether a ceil_mode pool drops a last window that starts in the end padding.

    torch and onnxruntime's kernels drop it; ONNX shape inference before pool
    revision 22 does not, and onnxruntime may then refuse the model.
    """
    hits = []

    def hook(pool, inputs, _output):
        for n in inputs[0].shape[2:]:
            k, s, p = (_first(v) for v in (pool.kernel_size, pool.stride, pool.padding))
            d = _first(getattr(pool, "dilation", 1))
            span = n + 2 * p - d * (k - 1) - 1
            hits.append(-(-span // s) * s >= n + p)

    module = build(arch)
    for sub in module.modules():
        if isinstance(sub, (torch.nn.modules.pooling._MaxPoolNd, torch.nn.modules.pooling._AvgPoolNd)):
            if sub.ceil_mode:
                sub.register_forward_hook(hook)
    with torch.no_grad():
        module(sample_input(arch))
    return any(hits)


def _first(value) -> int:
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=ATOL)

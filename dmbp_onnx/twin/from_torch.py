"""A twin straight from a live PyTorch module: export to ONNX, rebuild, prove equal to the module."""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import torch

from dmbp_onnx.errors import InputError, MismatchError
from dmbp_onnx.twin.twin import Twin, load

#: ONNX opset of the export (the legacy TorchScript exporter's default, the one the twin is tested on).
OPSET = 17


def from_torch(
    module: torch.nn.Module,
    example_input: torch.Tensor,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> Twin:
    """Export ``module`` through ``torch.onnx``, rebuild it as a twin and check it on ``example_input``.

    The module is exported in eval mode (its training flag is restored afterwards) with
    ``torch.onnx.export(dynamo=False)``, opset :data:`OPSET`, constant folding, input ``x`` and
    output ``y`` (``y0``, ``y1``, ... for several outputs), batch axis dynamic. The twin is then
    validated on ``example_input`` against onnxruntime *and* against the module's own output
    (:func:`dmbp_onnx.validate` with ``expected``), so an export that changed the function is caught.

    Like :func:`dmbp_onnx.load`, this does not judge DMBP eligibility: a module that is not
    piecewise linear (e.g. with a Sigmoid inside) still gives a twin that the gradient baselines
    explain, and :class:`~dmbp_onnx.DMBP` refuses it with
    :class:`~dmbp_onnx.IneligibleModelError` naming the offending nodes when it is constructed.

    Parameters
    ----------
    module : torch.nn.Module
        A single-input module.
    example_input : torch.Tensor
        A float batch the module accepts (on the module's device); it fixes the non-batch shape.
    rtol, atol : float
        Tolerances of the check: ``|twin - module| <= atol + rtol * |module|`` per element.

    Returns
    -------
    Twin
        On the CPU; the ONNX model is ``twin.model``.

    Raises
    ------
    InputError
        ``example_input`` is not a floating-point tensor with a batch axis.
    UnsupportedOpError, UnsupportedModelError
        The exported graph uses something the twin cannot rebuild.
    MismatchError
        The twin (or onnxruntime) differs from the module on ``example_input`` beyond tolerance.
    """
    from dmbp_onnx.validate import validate

    if not isinstance(example_input, torch.Tensor) or not example_input.is_floating_point() \
            or example_input.dim() < 1:
        raise InputError("example_input must be a floating-point torch.Tensor with a batch axis")
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            expected = _outputs(module(example_input))
        onnx_bytes = _export(module, example_input, len(expected))
    finally:
        module.train(training)
    twin = load(onnx_bytes)
    x = example_input.detach().float().cpu().numpy()
    report = validate(twin, inputs=[x], expected=expected, rtol=rtol, atol=atol, device="cpu")
    if not report.ok:
        worst = report.expected_max_abs if report.expected_max_abs is not None else report.max_abs
        raise MismatchError(
            f"the twin of {type(module).__name__} differs from the module on example_input "
            f"(max abs {worst:.3g}, rtol {rtol:g}, atol {atol:g}); first diverging node: "
            f"{report.first_divergence or 'none (onnxruntime agrees with the twin: the export changed the function)'}"
        )
    return twin


def _outputs(out: Any) -> list[np.ndarray]:
    """The module's output(s) as float32 arrays, in order."""
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    if not all(isinstance(o, torch.Tensor) for o in outs):
        raise InputError("the module must return a tensor or a tuple of tensors")
    return [o.detach().float().cpu().numpy() for o in outs]


def _export(module: torch.nn.Module, example: torch.Tensor, outputs: int) -> bytes:
    """ONNX bytes of ``module`` (legacy exporter, batch axis dynamic)."""
    names = ["y"] if outputs == 1 else [f"y{k}" for k in range(outputs)]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter warns that it is deprecated
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, opset_version=OPSET, do_constant_folding=True,
            input_names=["x"], output_names=names, dynamic_axes={n: {0: "batch"} for n in ["x", *names]},
        )  # fmt: skip
    return buffer.getvalue()

"""Prove a twin equal to onnxruntime; on a mismatch, bisect to the first diverging node.

The comparison is allclose-style, per element: ``|twin - ort| <= atol + rtol * |ort|``.
Bisection exposes every intermediate tensor of the cleaned graph as an extra
onnxruntime output, runs the twin's GraphModule node by node, and feeds each node
onnxruntime's own values of its inputs, so every node is judged on identical inputs
and the first one (in topological order) out of tolerance is the culprit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from dmbp_onnx.device import resolve_device
from dmbp_onnx.errors import InputError, MismatchError
from dmbp_onnx.runtime import make_session, run_session
from dmbp_onnx.twin.twin import Twin, load
from dmbp_onnx.validate.comparison import _largest, _output_entries, _top1, compare
from dmbp_onnx.validate.device import _as_tensors, _on_device, _to_numpy
from dmbp_onnx.validate.divergence import _locate, bisect
from dmbp_onnx.validate.inputs import (
    InputSpec,
    _expected_arrays,
    check_inputs,
    declared_inputs,
    random_inputs,
)
from dmbp_onnx.validate.report import ValidationReport

__all__ = [
    "InputSpec",
    "ValidationReport",
    "bisect",
    "check_inputs",
    "compare",
    "declared_inputs",
    "random_inputs",
    "validate",
]


def validate(
    twin_or_path: Twin | str | Path | bytes | onnx.ModelProto,
    inputs: Any = None,
    expected: Any = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    device: str = "auto",
    seed: int = 0,
) -> ValidationReport:
    """Compare every declared output of the twin with onnxruntime.

    Parameters
    ----------
    twin_or_path : Twin, str, Path, bytes or onnx.ModelProto
        A twin, or a model to load (:func:`dmbp_onnx.load`).
    inputs : array, sequence of arrays, or mapping of input name to array, optional
        Values for the graph inputs. By default seeded standard-normal float arrays of the
        declared shapes, dynamic dimensions set to 1 (an NHWC model gets NHWC arrays).
    expected : array or sequence of arrays, optional
        Reference outputs (e.g. from the source framework), one per declared output; when
        given, both the twin and onnxruntime must match them.
    rtol, atol : float
        Tolerances: an element passes when ``|a - b| <= atol + rtol * |b|``.
    device : {"auto", "cpu", "cuda"}
        Where the twin runs ("auto": CUDA when torch sees a GPU); onnxruntime uses its CUDA
        provider when this is not "cpu" and the provider really works.
    seed : int
        Seed of the random inputs.

    Returns
    -------
    ValidationReport
        With ``first_divergence`` naming the first diverging node when the twin disagrees.

    Raises
    ------
    InputError
        Inputs of the wrong number, dtype or shape, NaN/Inf inputs, malformed ``expected``,
        negative tolerances, or an unknown / unavailable device.
    ModelLoadError, UnsupportedOpError, UnsupportedModelError
        When the model cannot be loaded or rebuilt, or onnxruntime cannot run it.
    MismatchError
        When the twin does not even return as many outputs as onnxruntime.
    """
    if not (rtol >= 0 and atol >= 0):
        raise InputError(f"tolerances must be non-negative numbers, got rtol={rtol}, atol={atol}")
    torch_device = resolve_device(device)
    twin = twin_or_path if isinstance(twin_or_path, Twin) else load(twin_or_path)
    specs = declared_inputs(twin.model)
    arrays = random_inputs(specs, seed) if inputs is None else check_inputs(specs, inputs)
    session = make_session(twin.model, device)
    reference = run_session(session, {s.name: a for s, a in zip(specs, arrays)})
    output_names = [o.name for o in session.get_outputs()]
    with _on_device(twin, torch_device):
        got = [_to_numpy(t) for t in twin.forward_declared(*_as_tensors(arrays, torch_device))]
    if len(got) != len(reference):
        raise MismatchError(f"the twin has {len(got)} output(s), onnxruntime {len(reference)}")
    expected_arrays = None
    if expected is not None:
        expected_arrays = _expected_arrays(expected, len(reference), reference, output_names)

    outputs = _output_entries(output_names, got, reference, expected_arrays, rtol, atol)
    twin_agrees = all(o["ok"] for o in outputs)
    ok = twin_agrees and all(o.get("expected_ok", True) for o in outputs)
    divergence, first, notes = None, None, []
    if not twin_agrees:
        divergence, first = _locate(twin, arrays, rtol, atol, device)
    elif not ok:
        notes.append("the twin agrees with onnxruntime; the expected outputs differ from both")

    return ValidationReport(
        ok=ok,
        max_abs=max((o["max_abs"] for o in outputs), default=0.0),
        max_rel=max((o["max_rel"] for o in outputs), default=0.0),
        rtol=rtol,
        atol=atol,
        first_divergence=first,
        divergence=divergence,
        top1_agreement=_top1(got[0], reference[0]) if reference else None,
        outputs=outputs,
        providers=list(session.get_providers()),
        twin_device=str(torch_device),
        input_shapes=[list(a.shape) for a in arrays],
        random_inputs=inputs is None,
        seed=seed,
        expected_max_abs=_largest(outputs, "expected_max_abs"),
        ort_vs_expected_max_abs=_largest(outputs, "ort_vs_expected_max_abs"),
        notes=notes,
    )

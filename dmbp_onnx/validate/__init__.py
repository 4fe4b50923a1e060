"""Prove a twin equal to onnxruntime; on a mismatch, bisect to the first diverging node.

The comparison is allclose-style, per element: ``|twin - ort| <= atol + rtol * |ort|``.
Bisection exposes every intermediate tensor of the cleaned graph as an extra
onnxruntime output, runs the twin's GraphModule node by node, and feeds each node
onnxruntime's own values of its inputs, so every node is judged on identical inputs
and the first one (in topological order) out of tolerance is the culprit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import onnx

from dmbp_onnx.device import as_tensors, on_device, resolve_device, to_numpy
from dmbp_onnx.errors import InputError, MismatchError
from dmbp_onnx.runtime import make_session, run_session
from dmbp_onnx.twin.twin import Twin, load
from dmbp_onnx.validate.comparison import _largest, _output_entries, _top1, compare
from dmbp_onnx.validate.divergence import _locate, bisect
from dmbp_onnx.validate.inputs import (
    DEFAULT_BATCH,
    DEFAULT_SPATIAL,
    TensorSpec,
    _expected_arrays,
    check_inputs,
    declared_inputs,
    parse_shape,
    random_inputs,
    seeded_shapes,
)
from dmbp_onnx.validate.report import ValidationReport

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_SPATIAL",
    "TensorSpec",
    "ValidationReport",
    "bisect",
    "check_inputs",
    "compare",
    "declared_inputs",
    "parse_shape",
    "random_inputs",
    "seeded_shapes",
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
    shapes: Mapping[str, Sequence[int]] | None = None,
    output: str | None = None,
) -> ValidationReport:
    """Compare every declared output of the twin with onnxruntime.

    Parameters
    ----------
    twin_or_path : Twin, str, Path, bytes or onnx.ModelProto
        A twin, or a model to load (:func:`dmbp_onnx.load`).
    inputs : array, sequence of arrays, or mapping of input name to array, optional
        Values for the graph inputs. By default seeded standard-normal float arrays of the
        declared shapes (an NHWC model gets NHWC arrays), a dynamic first (batch) dimension
        set to 1 and every other dynamic dimension to 224 (see ``shapes``).
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
    shapes : mapping of input name to sequence of int, optional
        Shapes of the random inputs, per input name, instead of the defaults (e.g.
        ``{"x": (1, 3, 320, 320)}``); each must agree with the declared rank and static
        dimensions. Only with random inputs (not with ``inputs``).
    output : str, optional
        Compare only this declared output, on the twin of the subgraph it needs
        (:func:`dmbp_onnx.load` with ``output=``); default every output of the twin.

    Returns
    -------
    ValidationReport
        With ``first_divergence`` naming the first diverging node when the twin disagrees.

    Raises
    ------
    InputError
        Inputs of the wrong number, dtype or shape, unusable ``shapes`` (or ``shapes`` with
        ``inputs``), NaN/Inf inputs, malformed ``expected``,
        negative tolerances, or an unknown / unavailable device.
    UnknownOutputError
        ``output`` is not a declared output.
    ModelLoadError, UnsupportedOpError, UnsupportedModelError
        When the model cannot be loaded or rebuilt, or onnxruntime cannot run it.
    MismatchError
        When the twin does not even return as many outputs as onnxruntime.
    """
    if not (rtol >= 0 and atol >= 0):
        raise InputError(f"tolerances must be non-negative numbers, got rtol={rtol}, atol={atol}")
    torch_device = resolve_device(device)
    twin = twin_or_path if isinstance(twin_or_path, Twin) else load(twin_or_path, output=output)
    if output is not None and [o.name for o in twin.outputs] != [output]:
        twin = load(twin.model, output=output)
    specs = declared_inputs(twin.model)
    if inputs is not None and shapes:
        raise InputError("shapes apply to random inputs only: given inputs have their own shapes")
    arrays = random_inputs(specs, seed, shapes) if inputs is None else check_inputs(specs, inputs)
    notes = [] if inputs is not None else _defaulted_notes(specs, arrays, shapes or {})
    session = make_session(twin.model, device)
    try:
        reference = run_session(session, {s.name: a for s, a in zip(specs, arrays)})
    except InputError as exc:
        if inputs is not None:
            raise
        raise InputError(f"{exc} (random inputs; choose their shapes with --shape NAME=D0xD1x...)") from exc
    output_names = [o.name for o in session.get_outputs()]
    with on_device(twin, torch_device):
        got = [to_numpy(t) for t in twin.forward_declared(*as_tensors(arrays, torch_device))]
    if len(got) != len(reference):
        raise MismatchError(f"the twin has {len(got)} output(s), onnxruntime {len(reference)}")
    expected_arrays = None
    if expected is not None:
        expected_arrays = _expected_arrays(expected, len(reference), reference, output_names)

    outputs = _output_entries(output_names, got, reference, expected_arrays, rtol, atol)
    twin_agrees = all(o["ok"] for o in outputs)
    ok = twin_agrees and all(o.get("expected_ok", True) for o in outputs)
    divergence, first = None, None
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


def _defaulted_notes(specs, arrays, shapes: Mapping) -> list[str]:
    """A note per random input whose dynamic dimensions past the batch the defaults filled."""
    notes = []
    for spec, array in zip(specs, arrays):
        if spec.name in shapes or spec.shape is None:
            continue
        if any(not (isinstance(d, int) and d > 0) for d in spec.shape[1:]):
            declared = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
            notes.append(
                f"input '{spec.name}' declares {declared}: random values of shape {list(array.shape)} "
                f"(dynamic dimensions: batch {DEFAULT_BATCH}, others {DEFAULT_SPATIAL}; "
                "choose with --shape NAME=D0xD1x...)"
            )
    return notes

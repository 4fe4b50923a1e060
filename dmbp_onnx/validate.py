"""Prove a twin equal to onnxruntime; on a mismatch, bisect to the first diverging node.

The comparison is allclose-style, per element: ``|twin - ort| <= atol + rtol * |ort|``.
Bisection exposes every intermediate tensor of the cleaned graph as an extra
onnxruntime output, runs the twin's GraphModule node by node, and feeds each node
onnxruntime's own values of its inputs, so every node is judged on identical inputs
and the first one (in topological order) out of tolerance is the culprit.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import onnx
import torch
from torch import fx

from dmbp_onnx.errors import DmbpOnnxError, InputError, MismatchError
from dmbp_onnx.runtime import DEVICES, make_session, run_session
from dmbp_onnx.twin.twin import Twin, load

_TINY = 1e-12


@dataclass(frozen=True)
class InputSpec:
    """A graph input as the ONNX file declares it.

    Attributes
    ----------
    name : str
        Tensor name.
    shape : list of (int or str or None), or None
        Declared dimensions (str or None where dynamic); None when no shape is declared.
    dtype : numpy.dtype or None
        Declared element type; None when it has no numpy equivalent.
    """

    name: str
    shape: list | None
    dtype: np.dtype | None


@dataclass
class ValidationReport:
    """Outcome of :func:`validate`.

    Attributes
    ----------
    ok : bool
        Every declared output of the twin is within tolerance of onnxruntime (and, when
        ``expected`` was given, both twin and onnxruntime are within tolerance of it).
    max_abs, max_rel : float
        Largest absolute / relative error of the twin against onnxruntime over all outputs
        (``inf`` when an output's shape differs).
    rtol, atol : float
        The tolerances used.
    first_divergence : str or None
        On a mismatch, the first node of the cleaned graph whose output diverges.
    divergence : dict or None
        The same as data: ``node``, ``op``, ``tensor``, ``max_abs``, ``max_rel``.
    top1_agreement : float or None
        Fraction of rows whose argmax agrees, when the first output is ``(N, classes)``.
    outputs : list of dict
        Per declared output: ``name``, ``shape``, ``ok``, ``max_abs``, ``max_rel``, ``mismatched``
        (and ``expected_ok``, ``expected_max_abs``, ``ort_vs_expected_max_abs`` when
        ``expected`` was given).
    providers : list of str
        Execution providers of the onnxruntime session, in priority order.
    twin_device : str
        Device the twin ran on.
    input_shapes : list of list of int
        Shapes of the inputs used.
    random_inputs : bool
        Whether the inputs were drawn at random (see ``seed``).
    seed : int
        Seed of the random inputs.
    expected_max_abs, ort_vs_expected_max_abs : float or None
        Largest error of the twin / of onnxruntime against ``expected``, when given.
    notes : list of str
        Remarks, e.g. that only the expected outputs disagree.
    """

    ok: bool
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    first_divergence: str | None
    divergence: dict | None
    top1_agreement: float | None
    outputs: list[dict]
    providers: list[str]
    twin_device: str
    input_shapes: list[list[int]]
    random_inputs: bool
    seed: int
    expected_max_abs: float | None = None
    ort_vs_expected_max_abs: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict; non-finite floats become the strings ``"inf"`` / ``"nan"``."""
        return _json_safe(asdict(self))


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else str(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def declared_inputs(model: onnx.ModelProto) -> list[InputSpec]:
    """The graph inputs of ``model`` that are not initializers, as declared."""
    initializers = {t.name for t in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        shape = None
        if tensor.HasField("shape"):
            shape = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
            ]
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        except (KeyError, TypeError, ValueError):
            dtype = None
        specs.append(InputSpec(value.name, shape, dtype))
    return specs


def random_inputs(specs: Sequence[InputSpec], seed: int = 0) -> list[np.ndarray]:
    """Seeded standard-normal arrays of the declared shapes (dynamic dimensions -> 1).

    Raises
    ------
    InputError
        When an input declares no shape or is not floating point.
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        if spec.shape is None:
            raise InputError(f"input '{spec.name}' declares no shape: pass its values explicitly")
        if spec.dtype is None or not np.issubdtype(spec.dtype, np.floating):
            raise InputError(
                f"input '{spec.name}' has type {spec.dtype}: random values are only drawn for "
                "floating point inputs; pass its values explicitly"
            )
        dims = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
        arrays.append(rng.standard_normal(dims).astype(spec.dtype))
    return arrays


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _shape_text(shape: Sequence | None) -> str:
    if shape is None:
        return "(undeclared)"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def check_inputs(specs: Sequence[InputSpec], inputs: Any) -> list[np.ndarray]:
    """Check user inputs against the declared inputs and return them as arrays, in order.

    Parameters
    ----------
    specs : sequence of InputSpec
        The declared inputs (:func:`declared_inputs`).
    inputs : array, tensor, sequence of them, or mapping of input name to array
        The values to feed.

    Raises
    ------
    InputError
        Wrong number of inputs, unknown names, wrong dtype, a shape that contradicts a
        static declared dimension, or NaN/Inf values; the message names the input.
    """
    names = [s.name for s in specs]
    if isinstance(inputs, Mapping):
        unknown = [k for k in inputs if k not in names]
        missing = [n for n in names if n not in inputs]
        if unknown or missing:
            raise InputError(
                f"the model's inputs are {names}; unknown: {unknown or 'none'}, missing: {missing or 'none'}"
            )
        values = [inputs[n] for n in names]
    elif isinstance(inputs, (np.ndarray, torch.Tensor)):
        values = [inputs]
    else:
        values = list(inputs)
    if len(values) != len(specs):
        raise InputError(f"the model expects {len(specs)} input(s) {names}, got {len(values)}")
    arrays = []
    for spec, value in zip(specs, values):
        array = _to_numpy(value)
        if spec.dtype is not None and array.dtype != spec.dtype:
            raise InputError(
                f"input '{spec.name}' has dtype {array.dtype}, the model declares {spec.dtype.name}"
            )
        if spec.shape is not None and (
            array.ndim != len(spec.shape)
            or any(isinstance(d, int) and d > 0 and d != n for d, n in zip(spec.shape, array.shape))
        ):
            raise InputError(
                f"input '{spec.name}' has shape {list(array.shape)}, the model declares "
                f"{_shape_text(spec.shape)}"
            )
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            raise InputError(f"input '{spec.name}' {list(array.shape)} contains NaN or Inf values")
        arrays.append(array)
    return arrays


def compare(got: np.ndarray, ref: np.ndarray, rtol: float, atol: float) -> dict:
    """Element-wise ``|got - ref| <= atol + rtol * |ref|``; NaNs at the same places count as equal.

    Returns
    -------
    dict
        ``ok``, ``max_abs``, ``max_rel`` (``|got - ref| / (|ref| + tiny)``) and ``mismatched``
        (number of elements out of tolerance); ``max_abs = inf`` when the shapes differ.
    """
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape:
        return {"ok": False, "max_abs": math.inf, "max_rel": math.inf, "mismatched": int(ref.size)}
    a, b = got.astype(np.float64), ref.astype(np.float64)
    close = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
        diff = np.where(np.isnan(diff), math.inf, diff)
        rel = np.where(np.isfinite(diff), diff / (np.abs(b) + _TINY), math.inf)
        rel = np.where(same, 0.0, rel)
    return {
        "ok": bool(close.all()),
        "max_abs": float(diff.max()) if diff.size else 0.0,
        "max_rel": float(rel.max()) if rel.size else 0.0,
        "mismatched": int((~close).sum()),
    }


def _torch_device(device: str) -> torch.device:
    if device not in DEVICES:
        raise InputError(f"unknown device '{device}'; expected one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested, but torch sees no CUDA GPU")
    if device == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


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


def _top1(got: np.ndarray, ref: np.ndarray) -> float | None:
    if got.shape != ref.shape or ref.ndim != 2 or ref.shape[1] < 2 or ref.shape[0] == 0:
        return None
    if not np.issubdtype(ref.dtype, np.floating):
        return None
    return float(np.mean(np.argmax(got, axis=1) == np.argmax(ref, axis=1)))


def _expected_arrays(expected: Any, count: int, outputs: Sequence[np.ndarray], names: list[str]):
    values = [expected] if isinstance(expected, (np.ndarray, torch.Tensor)) else list(expected)
    if len(values) != count:
        raise InputError(f"got {len(values)} expected array(s), the model has {count} output(s) {names}")
    arrays = [_to_numpy(v) for v in values]
    for name, array, out in zip(names, arrays, outputs):
        if array.shape != out.shape:
            raise InputError(
                f"expected array for output '{name}' has shape {list(array.shape)}, "
                f"the model produces {list(out.shape)}"
            )
    return arrays


class _ForcedInterpreter(fx.Interpreter):
    """Runs a GraphModule node by node, recording chosen values and replacing them by references."""

    def __init__(self, module: fx.GraphModule, references: dict[str, torch.Tensor]) -> None:
        super().__init__(module)
        self.references = references
        self.captured: dict[str, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        value = super().run_node(n)
        reference = self.references.get(n.name)
        if reference is None:
            return value
        self.captured[n.name] = value
        if isinstance(value, torch.Tensor) and value.shape == reference.shape:
            return reference.to(dtype=value.dtype)
        return value


def _exposed_model(twin: Twin) -> onnx.ModelProto:
    """The cleaned graph with every node output exposed as an extra graph output."""
    import onnx_graphsurgeon as gs

    graph = twin.clean_graph.graph.copy()
    declared = {t.name for t in graph.outputs}
    extra = [
        t
        for node in graph.nodes
        for t in node.outputs
        if t.name and t.name not in declared and isinstance(t, gs.Variable)
    ]
    graph.outputs = list(graph.outputs) + extra
    model = gs.export_onnx(graph, do_type_check=False)
    model.ir_version = max(4, min(int(twin.model.ir_version), 10))
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in twin.clean_graph.opsets.items())
    return model


def bisect(
    twin: Twin, arrays: Sequence[np.ndarray], rtol: float, atol: float, device: str = "auto"
) -> dict | None:
    """The first node of the cleaned graph whose output leaves tolerance on identical inputs.

    Parameters
    ----------
    twin : Twin
        The twin under test.
    arrays : sequence of numpy.ndarray
        One array per graph input, already checked.
    rtol, atol : float
        Tolerances, as in :func:`validate`.
    device : {"auto", "cpu", "cuda"}
        Where onnxruntime and the twin run.

    Returns
    -------
    dict or None
        ``node``, ``op``, ``tensor``, ``max_abs``, ``max_rel`` of the first diverging node,
        or None when every node agrees with onnxruntime.

    Raises
    ------
    UnsupportedModelError
        When onnxruntime cannot run the cleaned graph.
    """
    graph = twin.clean_graph.graph
    session = make_session(_exposed_model(twin), device)
    names = [o.name for o in session.get_outputs()]
    feeds = {t.name: a for t, a in zip(graph.inputs, arrays)}
    values = dict(zip(names, run_session(session, feeds, names)))
    torch_device = _torch_device(device)
    references = {}
    for name, value in values.items():
        fx_name = twin.tensor_nodes.get(name)
        if fx_name is not None and np.issubdtype(value.dtype, np.floating):
            references[fx_name] = torch.from_numpy(np.array(value)).to(torch_device)
    interpreter = _ForcedInterpreter(twin.module, references)
    with _on_device(twin, torch_device):
        interpreter.run(*_as_tensors(arrays, torch_device))
    for node in graph.nodes:
        for tensor in node.outputs:
            fx_name = twin.tensor_nodes.get(tensor.name)
            if fx_name not in references or not isinstance(interpreter.captured.get(fx_name), torch.Tensor):
                continue
            result = compare(_to_numpy(interpreter.captured[fx_name]), values[tensor.name], rtol, atol)
            if not result["ok"]:
                return {
                    "node": node.name,
                    "op": node.op,
                    "tensor": tensor.name,
                    "max_abs": result["max_abs"],
                    "max_rel": result["max_rel"],
                }
    return None


def _largest(outputs: list[dict], key: str) -> float | None:
    values = [o[key] for o in outputs if key in o]
    return max(values) if values else None


def _describe(divergence: dict) -> str:
    return (
        f"node '{divergence['node']}' ({divergence['op']}): max abs {divergence['max_abs']:.3g} "
        f"(max rel {divergence['max_rel']:.3g}) on tensor '{divergence['tensor']}'"
    )


def _output_entries(
    names: list[str],
    got: list[np.ndarray],
    reference: list[np.ndarray],
    expected: list[np.ndarray] | None,
    rtol: float,
    atol: float,
) -> list[dict]:
    """Per-output comparison of the twin with onnxruntime (and both with ``expected``)."""
    entries = []
    for k, (name, ref) in enumerate(zip(names, reference)):
        entry = {"name": name, "shape": list(ref.shape), **compare(got[k], ref, rtol, atol)}
        if expected is not None:
            mine = compare(got[k], expected[k], rtol, atol)
            theirs = compare(ref, expected[k], rtol, atol)
            entry["expected_ok"] = mine["ok"] and theirs["ok"]
            entry["expected_max_abs"] = mine["max_abs"]
            entry["ort_vs_expected_max_abs"] = theirs["max_abs"]
        entries.append(entry)
    return entries


def _locate(
    twin: Twin, arrays: Sequence[np.ndarray], rtol: float, atol: float, device: str
) -> tuple[dict | None, str]:
    """Bisect and phrase the result as ``first_divergence``."""
    try:
        divergence = bisect(twin, arrays, rtol, atol, device)
    except DmbpOnnxError as exc:
        return None, f"bisection impossible: {exc}"
    if divergence is not None:
        return divergence, _describe(divergence)
    passes = ", ".join(twin.passes_applied) or "none"
    return None, (
        "no node of the cleaned graph diverges on identical inputs; the difference comes "
        f"from accumulated rounding or from the rewrite passes (applied: {passes})"
    )


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
    torch_device = _torch_device(device)
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

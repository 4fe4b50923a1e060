"""ONNX's own node conformance cases, generated from the installed ``onnx`` package.

The ``onnx`` wheel (1.19 and newer) no longer ships the serialized
``onnx/backend/test/data/node`` folder, but it ships the generators that wrote it
(``onnx.backend.test.case.node``): each ``export_*`` function builds a one-node
model and its expected outputs with numpy. :func:`load_cases` imports only the
generator modules of the ops the twin supports, so collection stays fast (the
public ``collect_testcases`` imports all of them, ~10 s); it reads the
generators' module-level ``_NodeTestCases`` list for that.

:func:`run_case` runs one case through the twin and classifies it:

* ``pass``: every output matches the expected one (``rtol``/``atol`` below);
* ``refused``: the twin raised :class:`dmbp_onnx.UnsupportedOpError` or
  :class:`dmbp_onnx.UnsupportedModelError` (by design: an attribute, dtype or
  non-constant parameter input it does not convert);
* ``fail``: wrong values or shape, or any other exception.

A case the twin refuses as shipped is retried, and the mode it finally ran in
is recorded with the outcome:

* ``constants``: the twin needs shape-like inputs (Reshape's shape, Pad's pads,
  Resize's scales, Clip's bounds, ...) as constants, while the cases feed them as
  graph inputs; every graph input after the first becomes an initializer;
* ``opset N``: the generators stamp each case with the op's newest schema
  revision (e.g. 25 for Reshape, 28 for Cast), newer than the twin registers;
  where that revision only widened the type list, the case is re-stamped with the
  newest revision the twin implements (``N``), so the semantics are still
  checked on the shipped data. A refusal in every mode counts as ``refused``.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import onnx
import torch

import dmbp_onnx
import dmbp_onnx.twin.ops  # noqa: F401 - registers the converters
from dmbp_onnx.errors import UnsupportedModelError, UnsupportedOpError
from dmbp_onnx.twin.registry import registered_ops

# The usual ONNX backend-test tolerances (what ``expect`` records for node cases).
RTOL, ATOL = 1e-3, 1e-7

# Generator module of an op, where it is not the op's lower-cased name.
_MODULE_OF = {"BatchNormalization": "batch_normalization", "Range": "rangeop"}


@dataclass(frozen=True)
class NodeCase:
    """One ONNX node test case: model, inputs, expected outputs."""

    name: str
    op: str
    model: onnx.ModelProto
    inputs: tuple[np.ndarray, ...]
    outputs: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Outcome:
    """How the twin fared on a case: ``status`` in pass/refused/fail, the ``mode``
    it ran in ("as shipped", "constants", "opset N" or "constants, opset N"), and a
    one-line ``detail``."""

    status: str
    mode: str
    detail: str = ""


@lru_cache(maxsize=1)
def load_cases() -> tuple[NodeCase, ...]:
    """Every node case whose ops the twin all registers, sorted by name."""
    from onnx.backend.test.case import node as generators

    generators._TargetOpType = None
    supported = set(registered_ops())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for op in supported:
            try:
                importlib.import_module(f"{generators.__name__}.{_MODULE_OF.get(op, op.lower())}")
            except ModuleNotFoundError:  # ONNX ships no cases for this op (or it is not ai.onnx)
                continue
    cases = {}
    for case in generators._NodeTestCases:
        ops = {n.op_type for n in case.model.graph.node}
        if not ops or not ops <= supported or case.name in cases:
            continue
        main = case.model.graph.node[0].op_type if len(ops) > 1 else next(iter(ops))
        (inputs, outputs), = case.data_sets
        cases[case.name] = NodeCase(
            case.name, main, case.model,
            tuple(_as_array(a) for a in inputs), tuple(_as_array(a) for a in outputs),
        )
    return tuple(cases[k] for k in sorted(cases))


def _as_array(value) -> np.ndarray:
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    return np.asarray(value)


def _promote_parameters(case: NodeCase) -> tuple[onnx.ModelProto, tuple[np.ndarray, ...]]:
    """The case's model with graph inputs 1.. turned into initializers."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    graph = model.graph
    for value, array in zip(graph.input[1:], case.inputs[1:]):
        graph.initializer.append(onnx.numpy_helper.from_array(array, value.name))
    del graph.input[1:]
    return model, case.inputs[:1]


def _restamp(model: onnx.ModelProto, op: str) -> onnx.ModelProto | None:
    """``model`` re-stamped with the newest opset whose ``op`` revision the twin implements.

    None unless the model's revision of ``op`` is unregistered and differs from
    that one only in its type lists (same attributes, inputs and outputs).
    """
    opset = _default_opset(model)
    registered = registered_ops().get(op, [])
    shipped = onnx.defs.get_schema(op, opset)
    older = [v for v in registered if v < shipped.since_version]
    if shipped.since_version in registered or not older:
        return None
    target = onnx.defs.get_schema(op, max(older))
    if _signature(target) != _signature(shipped):
        return None
    restamped = onnx.ModelProto()
    restamped.CopyFrom(model)
    for entry in restamped.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = max(older)
    return restamped


def _default_opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _signature(schema) -> tuple:
    """What a revision means apart from its types: attributes (with defaults), inputs, outputs."""
    attrs = tuple(sorted((k, str(a.default_value)) for k, a in schema.attributes.items()))
    return attrs, tuple(i.name for i in schema.inputs), tuple(o.name for o in schema.outputs)


def _compare(case: NodeCase, model: onnx.ModelProto, inputs) -> str:
    """Empty string when the twin reproduces the expected outputs, else why not."""
    twin = dmbp_onnx.load(model)
    with torch.no_grad():
        got = twin.forward_declared(*[torch.from_numpy(np.array(a)) for a in inputs])
    if len(got) != len(case.outputs):
        return f"twin has {len(got)} outputs, the case {len(case.outputs)}"
    for k, (g, e) in enumerate(zip(got, case.outputs)):
        g = g.detach().numpy()
        if g.shape != e.shape:
            return f"output {k}: shape {g.shape} vs expected {e.shape}"
        if g.dtype != e.dtype:
            return f"output {k}: dtype {g.dtype} vs expected {e.dtype}"
        if not np.allclose(g, e, rtol=RTOL, atol=ATOL, equal_nan=True):
            err = np.nanmax(np.abs(g.astype(np.float64) - e.astype(np.float64)))
            return f"output {k}: max abs error {err:.3g}{_onnxruntime_verdict(model, inputs, k, g)}"
    return ""


def _onnxruntime_verdict(model: onnx.ModelProto, inputs, k: int, got: np.ndarray) -> str:
    """Whether onnxruntime sides with the twin against the case's expected output."""
    from oracle import reference_outputs

    names = [v.name for v in model.graph.input]
    try:
        theirs = reference_outputs(model, dict(zip(names, inputs)))[k]
    except Exception:  # noqa: BLE001 - neither runtime runs it: no verdict
        return ""
    agree = theirs.shape == got.shape and np.allclose(theirs, got, rtol=RTOL, atol=1e-5)
    return " (onnxruntime agrees with the twin)" if agree else " (onnxruntime agrees with the case)"


def run_case(case: NodeCase) -> Outcome:
    """Run ``case`` through the twin (as shipped, then with constant parameters)."""
    attempts = [("as shipped", case.model, case.inputs)]
    if len(case.inputs) > 1:
        attempts.append(("constants", *_promote_parameters(case)))
    for mode, model, inputs in list(attempts):
        restamped = _restamp(model, case.op)
        if restamped is not None:
            version = _default_opset(restamped)
            label = f"opset {version}" if mode == "as shipped" else f"constants, opset {version}"
            attempts.append((label, restamped, inputs))
    refusal = ""
    for mode, model, inputs in attempts:
        try:
            problem = _compare(case, model, inputs)
        except (UnsupportedOpError, UnsupportedModelError) as exc:
            refusal = f"{type(exc).__name__}: {exc}"
            continue
        except Exception as exc:  # noqa: BLE001 - any other exception is a failure
            return Outcome("fail", mode, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return Outcome("fail", mode, problem) if problem else Outcome("pass", mode)
    return Outcome("refused", attempts[-1][0], refusal.splitlines()[0])

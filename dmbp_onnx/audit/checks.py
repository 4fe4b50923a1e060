"""The checks run on every model of an audit, in order, each depending on the earlier ones.

``load`` -> ``inspect`` (clean graph, inspection, twin) -> ``validate-seeded-N`` ->
``validate-given-npy`` -> ``eligibility`` -> ``dmbp-smoke``. A check whose
prerequisite failed is skipped with the reason. Errors a model can cause
(:class:`~dmbp_onnx.errors.DmbpOnnxError`) fail the check with their one-line
message; any other exception is a bug of the tool and makes the check an ``error``.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from dmbp_onnx.audit.config import AuditConfig
from dmbp_onnx.audit.given import GivenArrays, find_given
from dmbp_onnx.errors import DmbpOnnxError, IneligibleModelError, UnsupportedModelError

STATUSES = ("pass", "fail", "skip", "error")
"""Every status a check can have."""


@dataclass
class CheckResult:
    """The outcome of one check of one model.

    Attributes
    ----------
    name : str
        Check name, e.g. ``"load"`` or ``"validate-seeded-4"``.
    status : {"pass", "fail", "skip", "error"}
        ``error`` means the tool itself broke (a bug), not the model.
    message : str
        One human sentence: what was found, or why it failed or was skipped.
    duration_s : float
        Wall-clock time of the check.
    details : dict
        Measured values (JSON-ready).
    """

    name: str
    status: str
    message: str
    duration_s: float = 0.0
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The result as a dict."""
        return asdict(self)


def check_names(config: AuditConfig) -> list[str]:
    """Names of the checks run on every model, in order."""
    return ["load", "inspect", f"validate-seeded-{config.samples}", "validate-given-npy", "eligibility", "dmbp-smoke"]


class Skip(Exception):
    """Raised by a check that does not apply; its message says why."""


class Failed(Exception):
    """Raised by a check the model fails, with the measured values."""

    def __init__(self, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


@dataclass
class _State:
    """What the checks of one model learn and hand on to the next ones."""

    path: Path
    config: AuditConfig
    model: Any = None
    cleaned: Any = None
    twin: Any = None
    given: GivenArrays | None = None
    eligible: bool = False


def _load(state: _State) -> tuple[str, dict]:
    from dmbp_onnx.graph.load import load_model

    model = state.model = load_model(state.path, max_bytes=state.config.max_bytes)
    opsets = {o.domain or "ai.onnx": int(o.version) for o in model.opset_import}
    details = {
        "ir_version": int(model.ir_version),
        "opsets": opsets,
        "producer": " ".join(p for p in (model.producer_name, model.producer_version) if p),
        "nodes": len(model.graph.node),
        "initializers": len(model.graph.initializer),
    }
    listed = ", ".join(f"{d} {v}" for d, v in opsets.items())
    return f"IR {details['ir_version']}, opsets {listed}, {details['nodes']} nodes", details


def _inspect(state: _State) -> tuple[str, dict]:
    from dmbp_onnx.graph.inspect import inspect_model
    from dmbp_onnx.graph.outputs import choose_output, select_output
    from dmbp_onnx.graph.passes import clean
    from dmbp_onnx.twin.twin import Twin

    if state.model is None:
        raise Skip("the model did not load")
    choice = choose_output(state.model, state.config.output_for(state.path))
    model = select_output(state.model, choice.name)
    state.cleaned = clean(model)
    info = inspect_model(model, state.cleaned)
    info["output"] = choice.to_dict()
    info["layout_reason"] = state.cleaned.layout_reason
    try:
        state.twin = Twin(model, state.cleaned)
    except UnsupportedModelError as exc:
        raise Failed(f"the twin of output '{choice.name}' cannot be built: {exc}", info) from None
    info["mask_sites"] = len(state.twin.mask_sites)
    passes = ", ".join(info["passes_applied"]) or "none"
    return (
        f"output '{choice.name}' ({choice.rule}), layout {state.twin.layout}, "
        f"{sum(info['ops_clean'].values())} nodes after passes ({passes}), {info['mask_sites']} mask sites",
        info,
    )


def _seeded_shapes(state: _State) -> dict[str, list[int]]:
    """The configured random-input shapes of the twin's inputs."""
    return state.config.shapes_for([spec.name for spec in state.twin.inputs])


def _num(value: Any) -> str:
    """A float in 3 significant digits (``inf``, ``nan`` as such); anything else as its ``str``."""
    return f"{value:.3g}" if isinstance(value, (int, float)) else str(value)


def _mismatch(report: dict, label: str) -> str:
    text = (
        f"mismatch on {label}: max abs {_num(report['max_abs'])}, max rel {_num(report['max_rel'])} "
        f"(rtol {report['rtol']:g}, atol {report['atol']:g})"
    )
    if report["first_divergence"]:
        text += f"; first divergence: {report['first_divergence']}"
    return text + "".join(f"; {note}" for note in report["notes"])


def _validate_seeded(state: _State) -> tuple[str, dict]:
    from dmbp_onnx.validate import validate

    config = state.config
    if state.twin is None:
        raise Skip("no twin (see inspect)")
    if config.samples == 0:
        raise Skip("samples = 0")
    runs = []
    for seed in range(config.seed, config.seed + config.samples):
        report = validate(state.twin, rtol=config.rtol, atol=config.atol, device="cpu", seed=seed,
                          shapes=_seeded_shapes(state) or None).to_dict()
        keys = ("ok", "max_abs", "max_rel", "first_divergence", "input_shapes")
        runs.append({"seed": seed, **{k: report[k] for k in keys}})
        if not report["ok"]:
            raise Failed(_mismatch(report, f"seed {seed}"), {"runs": runs})
    worst_abs = max(r["max_abs"] for r in runs)
    worst_rel = max(r["max_rel"] for r in runs)
    return (
        f"{len(runs)} seeded input(s) match onnxruntime: max abs {worst_abs:.3g}, max rel {worst_rel:.3g}",
        {"runs": runs, "max_abs": worst_abs, "max_rel": worst_rel},
    )


def _validate_given(state: _State) -> tuple[str, dict]:
    from dmbp_onnx.validate import validate

    config = state.config
    state.given = given = find_given(state.path)
    if given is None:
        raise Skip(f"no {state.path.stem}.input.npy or {state.path.stem}.npz next to the model")
    if state.twin is None:
        raise Skip("no twin (see inspect)")
    outputs = len(state.model.graph.output)
    expected = None
    notes = []
    if given.expected is not None and outputs == 1:
        expected = [given.expected]
    elif given.expected is not None:
        notes.append(f"expected output not compared: the model declares {outputs} outputs")
    report = validate(
        state.twin, inputs=[given.input], expected=expected, rtol=config.rtol, atol=config.atol, device="cpu"
    ).to_dict()
    details = {"source": given.source, "notes": notes, **report}
    if not report["ok"]:
        raise Failed(_mismatch(report, given.source), details)
    against = "onnxruntime and the expected output" if expected is not None else "onnxruntime"
    message = (
        f"{given.source} {list(given.input.shape)}: matches {against} "
        f"(max abs {report['max_abs']:.3g}, max rel {report['max_rel']:.3g})"
    )
    return message + "".join(f"; {note}" for note in notes), details


def _eligibility(state: _State) -> tuple[str, dict]:
    from dmbp_onnx.graph.inspect import offending_nodes

    if state.cleaned is None:
        raise Skip("the model did not load" if state.model is None else "the graph could not be cleaned")
    graph = state.cleaned.graph
    output = graph.outputs[0].name
    offending = offending_nodes(graph, [output])
    details = {"output": output, "offending": [{"node": n, "op": op} for n, op in offending]}
    if offending:
        reason = str(IneligibleModelError(offending))
    elif state.twin is None:
        raise Skip("piecewise linear, but DMBP needs the twin, which cannot be built (see inspect)")
    else:
        from dmbp_onnx.methods import DMBP

        try:
            DMBP(state.twin, iterations=0, device="cpu")
            reason = None
        except (IneligibleModelError, UnsupportedModelError) as exc:
            reason = str(exc)
    if reason is None:
        state.eligible = True
        sites = len(state.twin.mask_sites)
        return f"DMBP applies: piecewise linear from the input to output '{output}', {sites} mask sites", details
    if state.config.require_eligible:
        raise Failed(f"DMBP does not apply: {reason}", details)
    raise Skip(f"DMBP does not apply (allowed by require_eligible = false): {reason}")


def _dmbp_smoke(state: _State) -> tuple[str, dict]:
    from dmbp_onnx.audit.smoke import dmbp_smoke
    from dmbp_onnx.validate import declared_inputs, random_inputs

    config = state.config
    if not config.explain:
        raise Skip("explain is off")
    if not state.eligible:
        raise Skip("the model is not eligible for DMBP (see eligibility)")
    if state.given is not None:
        x, origin = state.given.input[:2], state.given.source
    else:
        x = random_inputs(declared_inputs(state.twin.model), config.seed, _seeded_shapes(state) or None)[0]
        origin = f"random (seed {config.seed})"
    violations, details = dmbp_smoke(state.twin, x, config.explain_iterations, config.seed)
    details["input"] = origin
    if violations:
        raise Failed("; ".join(violations), details)
    return (
        f"{config.explain_iterations} iterations on {details['batch']} image(s) from {origin}: invariants hold",
        details,
    )


_CHECKS: tuple[Callable[[_State], tuple[str, dict]], ...] = (
    _load,
    _inspect,
    _validate_seeded,
    _validate_given,
    _eligibility,
    _dmbp_smoke,
)


def _run(name: str, check: Callable[[_State], tuple[str, dict]], state: _State) -> CheckResult:
    start = time.perf_counter()
    try:
        message, details = check(state)
        status = "pass"
    except Skip as exc:
        status, message, details = "skip", str(exc), {}
    except Failed as exc:
        status, message, details = "fail", str(exc), exc.details
    except DmbpOnnxError as exc:
        status, message, details = "fail", str(exc), {"error": type(exc).__name__}
    except Exception as exc:  # noqa: BLE001 - a bug of the tool must not stop the audit
        status, message = "error", f"internal error {type(exc).__name__}: {exc}"
        details = {"traceback": traceback.format_exc()}
    return CheckResult(name, status, message, time.perf_counter() - start, details)


def audit_model(
    path: str | Path,
    config: AuditConfig,
    on_start: Callable[[str], None] = lambda name: None,
    on_result: Callable[[CheckResult], None] = lambda result: None,
) -> list[CheckResult]:
    """Run every check on the model at ``path``, in this process.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file.
    config : AuditConfig
        Tolerances, samples, explain settings, size limit.
    on_start, on_result : callable
        Called with each check's name before it runs, and with its result after.

    Returns
    -------
    list of CheckResult
        One per name of :func:`check_names`, in that order.
    """
    state = _State(Path(path), config)
    results = []
    for name, check in zip(check_names(config), _CHECKS):
        on_start(name)
        result = _run(name, check, state)
        on_result(result)
        results.append(result)
    return results

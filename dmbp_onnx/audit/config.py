"""The settings of an audit run, read from ``audit.toml`` and overridden by command-line flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from dmbp_onnx.errors import InputError


@dataclass(frozen=True)
class AuditConfig:
    """What every model of an audit is checked against.

    Attributes
    ----------
    rtol, atol : float
        Tolerances of the twin-vs-onnxruntime comparison (``|twin - ort| <= atol + rtol * |ort|``).
    samples : int
        Number of seeded random inputs the twin is validated on (0 skips that check).
    explain : bool
        Run the short DMBP smoke test on eligible models.
    explain_iterations : int
        DMBP iterations of the smoke test (default 3, DMBP's own default: Adam moves every mask
        by about the learning rate, 0.25, per step, so the sets separate within a few steps).
    max_model_mb : float
        Largest accepted model (file plus external data), in MiB; checked before reading.
    time_budget_s : float
        Wall-clock budget of one model, all its checks together.
    seed : int
        Seed of the first random input (sample ``k`` uses ``seed + k``) and of DMBP.
    require_eligible : bool
        When true (default) a model DMBP does not apply to fails the ``eligibility`` check;
        when false that check is skipped with the reason.
    output : str or None
        The output every model is checked on (``--output``); only the subgraph it needs is
        rebuilt. ``None``: :func:`~dmbp_onnx.graph.outputs.choose_output`'s default rule.
    outputs : dict of str to str
        Per model, the output to check, keyed by the model's path as given, file name or stem
        (the ``[outputs]`` table of ``audit.toml``); wins over ``output``.
    shapes : dict of str to list of int
        Shapes of the seeded random inputs, by input name (``--shape NAME=DIMS``; the ``[shapes]``
        table); a model uses those of the inputs it declares.
    """

    rtol: float = 1e-4
    atol: float = 1e-5
    samples: int = 4
    explain: bool = True
    explain_iterations: int = 3
    max_model_mb: float = 512.0
    time_budget_s: float = 120.0
    seed: int = 0
    require_eligible: bool = True
    output: str | None = None
    outputs: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for item in fields(self):
            _check(item.name, getattr(self, item.name))

    @property
    def max_bytes(self) -> int:
        """``max_model_mb`` in bytes."""
        return int(self.max_model_mb * 2**20)

    def replace(self, **changes: Any) -> "AuditConfig":
        """A copy with ``changes`` applied; ``None`` values are ignored (flag not given)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        """The settings as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def output_for(self, path: str | Path) -> str | None:
        """The output to check for the model at ``path`` (None: the default rule)."""
        path = Path(path)
        for key in (str(path), path.name, path.stem):
            if key in self.outputs:
                return self.outputs[key]
        return self.output

    def shapes_for(self, inputs: list[str]) -> dict[str, list[int]]:
        """The configured shapes of the inputs named ``inputs``."""
        return {name: list(dims) for name, dims in self.shapes.items() if name in inputs}


_KINDS = {
    "rtol": ("non-negative number", lambda v: _number(v) and v >= 0),
    "atol": ("non-negative number", lambda v: _number(v) and v >= 0),
    "samples": ("non-negative integer", lambda v: _integer(v) and v >= 0),
    "explain": ("boolean", lambda v: isinstance(v, bool)),
    "explain_iterations": ("positive integer", lambda v: _integer(v) and v >= 1),
    "max_model_mb": ("positive number", lambda v: _number(v) and v > 0),
    "time_budget_s": ("positive number", lambda v: _number(v) and v > 0),
    "seed": ("non-negative integer", lambda v: _integer(v) and v >= 0),
    "require_eligible": ("boolean", lambda v: isinstance(v, bool)),
    "output": ("output name (string)", lambda v: v is None or (isinstance(v, str) and bool(v))),
    "outputs": ("table of model name = output name", lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(o, str) and o for k, o in v.items())),
    "shapes": ("table of input name = list of positive integers", lambda v: isinstance(v, dict) and all(
        isinstance(k, str) and isinstance(d, (list, tuple)) and d and all(_integer(n) and n > 0 for n in d)
        for k, d in v.items())),
}


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and value == value and value != float("inf")


def _integer(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _check(key: str, value: Any) -> None:
    kind, ok = _KINDS[key]
    if not ok(value):
        raise InputError(f"audit setting '{key}' must be a {kind}, got {value!r}")


def load_config(path: str | Path) -> AuditConfig:
    """Read an ``audit.toml``: top-level keys named like :class:`AuditConfig`'s attributes.

    Raises
    ------
    InputError
        When the file is missing or not valid TOML, a key is unknown, or a value has the
        wrong type or range.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        raise InputError("reading an audit config needs Python 3.11 or later (tomllib)") from None
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise InputError(f"cannot read audit config '{path}': {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"audit config '{path}' is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(_KINDS))
    if unknown:
        raise InputError(
            f"audit config '{path}': unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(_KINDS)}"
        )
    try:
        return AuditConfig(**data)
    except InputError as exc:
        raise InputError(f"audit config '{path}': {exc}") from None

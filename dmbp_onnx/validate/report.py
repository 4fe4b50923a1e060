"""The outcome of :func:`dmbp_onnx.validate.validate`, as a dataclass and as a dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
        """The fields as a dict (write it with :mod:`dmbp_onnx.jsonio`: floats may be NaN or infinite)."""
        return asdict(self)

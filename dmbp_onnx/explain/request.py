"""What the explain job is asked to do: :class:`ExplainRequest` and its up-front checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from dmbp_onnx.errors import InputError
from dmbp_onnx.explain.inputs import IMAGE_SUFFIXES
from dmbp_onnx.options import DMBP_RULES


@dataclass
class ExplainRequest:
    """Everything the explain job needs; ``None`` means "use the default".

    Attributes
    ----------
    model : pathlib.Path or None
        ONNX file; ``None`` = the shipped demo model.
    images : list of pathlib.Path
        Image files or folders; empty = a shipped sample image (demo model only).
    input_npy : pathlib.Path or None
        A preprocessed array in the model's layout, instead of images.
    output : str or None
        The output to explain (the twin is built from the subgraph it needs); ``None`` = the
        default rule of :func:`~dmbp_onnx.graph.outputs.choose_output` (the first
        class-probability output, ...).
    target : str
        ``"auto"`` (the predicted class; for map outputs the predicted class's region,
        :data:`~dmbp_onnx.methods.target.DENSE_RULE`), a class index or a class name.
    box : tuple of int or None
        ``(y0, x0, y1, x1)`` in output-map coordinates, for map outputs.
    methods : list of str
        Method CLI names (:data:`dmbp_onnx.methods.METHODS`).
    iterations : int or None
        DMBP iterations (``None``: the method's default).
    rule : str or None
        DMBP's backward rule, ``"lrp-gamma"`` or ``"gradient"`` (``None``: the method's default).
    regions : int or None
        DMBP's region grid: masks per filter and per cell of a ``g x g`` grid (``None``: the rule's
        default; 1: per-filter masks, the paper's).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size : int
        Images per batch (validation and attribution); a model declaring a fixed batch uses that
        (a shorter last batch is padded with copies of its last image, whose results are dropped).
    out : pathlib.Path
        Output folder.
    size, layout, scale, mean, std
        Preprocessing overrides (see :mod:`dmbp_onnx.preprocess`).
    display : str
        Display recipe of the signed map (``"clip"`` or ``"authors"``).
    force : bool
        Explain even when the twin disagrees with onnxruntime on the input.
    progress : bool
        Progress bars over images and DMBP iterations.
    """

    model: Path | None = None
    images: list[Path] = field(default_factory=list)
    input_npy: Path | None = None
    output: str | None = None
    target: str = "auto"
    box: tuple[int, int, int, int] | None = None
    methods: list[str] = field(default_factory=lambda: ["dmbp"])
    iterations: int | None = None
    rule: str | None = None
    regions: int | None = None
    device: str = "auto"
    batch_size: int = 8
    out: Path = Path("dmbp_out")
    size: tuple[int, int] | None = None
    layout: str | None = None
    scale: float | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    display: str = "clip"
    force: bool = False
    progress: bool = False


def _check_request(request: ExplainRequest) -> None:
    """Argument combinations that cannot work, caught before anything is loaded."""
    if request.model is not None and request.model.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"'{request.model}' looks like an image; the first argument is the ONNX model "
                         "(run without arguments to explain the shipped demo)")
    if request.input_npy is not None and request.images:
        raise InputError("give either images or --input-npy, not both")
    if request.model is None and (request.images or request.input_npy is not None):
        raise InputError("inputs were given without a model")
    check_run_options(request.batch_size, request.iterations, request.methods, request.rule, request.regions)


def check_run_options(
    batch_size: int, iterations: int | None, methods, rule: str | None = None, regions: int | None = None
) -> None:
    """The options every explain run shares (one image or a dataset job): typed errors for bad ones."""
    if regions is not None and regions < 1:
        raise InputError(f"--regions must be at least 1, got {regions}")
    if regions is not None and "dmbp" not in methods:
        raise InputError("--regions applies to DMBP, which is not among the chosen methods")
    if rule is not None and rule not in DMBP_RULES:
        raise InputError(f"unknown DMBP rule {rule!r}; choose one of {', '.join(DMBP_RULES)}")
    if rule is not None and "dmbp" not in methods:
        raise InputError("--rule applies to DMBP, which is not among the chosen methods")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {batch_size}")
    if iterations is not None and iterations < 0:
        raise InputError(f"--iterations must be non-negative, got {iterations}")
    if not methods:
        raise InputError("no attribution method was chosen")

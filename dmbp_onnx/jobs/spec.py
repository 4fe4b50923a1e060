"""What a dataset job computes (:class:`JobSpec`) and the keys that identify finished work."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


#: Bumped when the arrays written per image change meaning, so older outputs are not reused (3: DMBP's
#: defaults under the LRP rule became one path point and region masks).
FORMAT_VERSION = 3
_CHUNK = 2**20


@dataclass(frozen=True)
class JobSpec:
    """Everything an explain job needs; plain values only, so it pickles to Ray actors.

    Attributes
    ----------
    model : str
        ONNX file.
    out : str
        Output folder: ``index.jsonl`` and ``maps/``.
    methods : tuple of str
        Method CLI names.
    iterations : int or None
        DMBP iterations (``None``: the method's default).
    rule : str or None
        DMBP's backward rule (``None``: the method's default).
    regions : int or None
        DMBP's region grid (``None``: the rule's default; 1: per-filter masks).
    target : str
        ``auto``, a class index or name; a manifest's per-image target overrides it.
    box : tuple of int or None
        ``(y0, x0, y1, x1)`` for map outputs.
    batch_size : int
        Images per model call.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    figures : bool
        Also write the overlay and panel PNGs of every image.
    display : str
        Display recipe of the signed map (``clip`` or ``authors``).
    output : str or None
        The output to explain (its subgraph alone is built); ``None``: explain's default rule
        (:func:`~dmbp_onnx.graph.outputs.choose_output`).
    force : bool
        Explain batches on which the twin disagrees with onnxruntime (else their images fail).
    preprocess : dict
        Overrides of ``layout``, ``size``, ``scale``, ``mean``, ``std`` (``None`` = from the model).
    """

    model: str
    out: str
    methods: tuple[str, ...] = ("dmbp",)
    iterations: int | None = None
    rule: str | None = None
    regions: int | None = None
    target: str = "auto"
    box: tuple[int, int, int, int] | None = None
    batch_size: int = 8
    device: str = "auto"
    figures: bool = True
    display: str = "clip"
    force: bool = False
    output: str | None = None
    preprocess: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from dmbp_onnx.explain.request import check_run_options

        check_run_options(self.batch_size, self.iterations, self.methods, self.rule, self.regions)

    def settings(self) -> dict[str, Any]:
        """What decides the maps (not where or how fast they are computed): part of every key."""
        return {"format": FORMAT_VERSION, "methods": list(self.methods), "iterations": self.iterations,
                "rule": self.rule, "regions": self.regions,
                "box": None if self.box is None else list(self.box), "output": self.output, "display": self.display,
                "figures": self.figures, "preprocess": {k: v for k, v in sorted(self.preprocess.items())}}

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain values."""
        return asdict(self)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def work_key(image_sha: str, model_sha: str, settings: dict[str, Any], target: str) -> str:
    """The key of one image's work: its content, the model, the settings and its target."""
    text = json.dumps([image_sha, model_sha, settings, target], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()

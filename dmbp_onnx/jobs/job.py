"""The explain job itself: a twin built once, then batches of images -> arrays, figures and rows.

:class:`ExplainJob` is the one implementation both executors run: the in-process loop
(:mod:`dmbp_onnx.jobs.run`) and each Ray actor (:mod:`dmbp_onnx.jobs.ray_executor`). It
never touches the index; it returns one row per record and the driver appends them.
A record is ``{"path", "target", "key", "image_sha256"}``; a record whose image cannot be
used (unreadable, wrong size, non-finite score, a failing batch) gets a ``failed`` row.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dmbp_onnx.errors import DmbpOnnxError
from dmbp_onnx.explain.methods import _build_method
from dmbp_onnx.explain.outputs import _write_outputs
from dmbp_onnx.explain.request import ExplainRequest
from dmbp_onnx.explain.targets import _probabilities, request_targets
from dmbp_onnx.jobs.spec import JobSpec, file_sha256

Record = dict[str, Any]
Row = dict[str, Any]
MAPS_DIR = "maps"


class ExplainJob:
    """A twin and its methods, built once; :meth:`run` explains one batch of records.

    Parameters
    ----------
    spec : JobSpec
        What to compute and where to write it.

    Raises
    ------
    DmbpOnnxError
        The model cannot be loaded or a method cannot be built.
    """

    def __init__(self, spec: JobSpec) -> None:
        from dmbp_onnx.device import resolve_device
        from dmbp_onnx.explain.inputs import _preprocess_config
        from dmbp_onnx.methods.base import static_batch
        from dmbp_onnx.explain.model import load_twin

        self.spec = spec
        self.settings = spec.settings()
        self.twin, _ = load_twin(Path(spec.model), spec.output)
        self.model_sha = file_sha256(spec.model)
        request = ExplainRequest(model=Path(spec.model), iterations=spec.iterations, rule=spec.rule, regions=spec.regions,
                                 device=spec.device,
                                 **{k: v for k, v in spec.preprocess.items()})
        self.config, self.output_kind = _preprocess_config(self.twin, request)
        self.class_names = list(self.config.class_names) if self.config.class_names else None
        self.device = resolve_device(spec.device)
        self.twin.to(self.device)
        self.methods = {name: _build_method(name, self.twin, request, self.device) for name in spec.methods}
        self.fixed = static_batch(self.twin)
        self.maps = Path(spec.out) / MAPS_DIR
        self.maps.mkdir(parents=True, exist_ok=True)

    def run(self, records: list[Record]) -> list[Row]:
        """One row per record, in the records' order."""
        rows: dict[str, Row] = {}
        loaded: list[tuple[Record, Any]] = []
        for record in records:
            try:
                loaded.append((record, self._load(record)))
            except (DmbpOnnxError, OSError) as exc:
                rows[record["key"]] = self._failed(record, exc)
        size = self.fixed or self.spec.batch_size
        by_shape: dict[tuple, list] = {}
        for item in loaded:
            by_shape.setdefault(item[1].array.shape, []).append(item)
        for group in by_shape.values():
            for start in range(0, len(group), size):
                for row in self._batch(group[start:start + size]):
                    rows[row["key"]] = row
        return [rows[record["key"]] for record in records]

    def _failed(self, record: Record, error: BaseException | str) -> Row:
        """The row of an image that could not be explained."""
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return {"key": record["key"], "image": record["path"], "image_sha256": record.get("image_sha256"),
                "model_sha256": self.model_sha, "settings": self.settings, "status": "failed", "error": message,
                "target": record.get("target"), "score": None, "methods": {}, "files": {}}

    def _load(self, record: Record):
        from dmbp_onnx.preprocess import load_image

        return load_image(record["path"], self.config)

    def _batch(self, batch: list) -> list[Row]:
        try:
            return self._explain(batch)
        except (DmbpOnnxError, RuntimeError, ValueError) as exc:
            return [self._failed(record, exc) for record, _ in batch]

    def _explain(self, batch: list) -> list[Row]:
        from dmbp_onnx.explain.validation import _validate
        from dmbp_onnx.methods.target import resolve_targets

        x = torch.from_numpy(np.concatenate([image.array for _, image in batch]).astype(np.float32))
        with torch.no_grad():
            output = self.twin(self._padded(x).to(self.device)).float().cpu()[: x.shape[0]]
        targets = [request_targets(record.get("target") or self.spec.target, self.spec.box, output[k:k + 1],
                                   self.class_names)[0] for k, (record, _) in enumerate(batch)]
        targets, selector = resolve_targets(output, targets)
        scores = (output * selector).flatten(1).sum(1)
        finite = [k for k in range(len(batch)) if bool(torch.isfinite(scores[k]))]
        rows = {k: self._failed(batch[k][0], f"non-finite score {float(scores[k])}")
                for k in range(len(batch)) if k not in finite}
        if finite:
            keep = torch.tensor(finite)
            x, output, scores = x[keep], output[keep], scores[keep]
            targets = [targets[k] for k in finite]
            validation = _validate(self.twin, self._padded(x), self.device, self.spec.force)
            check = {"ok": validation["ok"], "max_abs": validation["max_abs"]}
            probs = _probabilities(output, self.twin, self.output_kind)
            attributions = {name: method.attribute(x, target=targets) for name, method in self.methods.items()}
            for j, k in enumerate(finite):
                rows[k] = self._write(batch[k], j, attributions, targets[j], output.shape, float(scores[j]),
                                      None if probs is None else probs[j], check)
        return [rows[k] for k in range(len(batch))]

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` padded to the model's fixed batch (a fixed-batch model runs exactly its batch)."""
        from dmbp_onnx.methods.base import pad_batch

        return pad_batch(x, self.fixed) if self.fixed else x

    def _write(self, item, j: int, attributions: dict, target, output_shape, score: float, probs,
               validation: dict) -> Row:
        """Write one image's files atomically (a private folder, then ``os.replace``); its row."""
        record, image = item
        stem = f"{Path(record['path']).stem}.{record['key'][:12]}"
        with tempfile.TemporaryDirectory(dir=self.maps, prefix=".tmp-") as scratch:
            entry = _write_outputs(Path(scratch), stem, Path(record["path"]), image.array, image.original, j,
                                   attributions, target, output_shape, score, probs, self.class_names,
                                   self.spec.display, None, figures=self.spec.figures)
            files = {}
            for name, written in entry["files"].items():
                final = self.maps / Path(written).name
                os.replace(written, final)
                files[name] = f"{MAPS_DIR}/{final.name}"
        return {"key": record["key"], "image": record["path"], "image_sha256": record["image_sha256"],
                "model_sha256": self.model_sha, "settings": self.settings, "status": "ok", "error": None,
                "target": entry["target"], "target_label": entry["target_label"], "score": score,
                "probability": entry["probability"], "methods": entry["methods"], "files": files,
                "validation": validation}

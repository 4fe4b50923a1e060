"""The job's report (:class:`ExplainReport`) and the helpers that fill ``report.json``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ExplainReport:
    """What the job did; :meth:`to_dict` is what ``report.json`` holds."""

    data: dict[str, Any]
    path: Path

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable report."""
        return self.data

    def summary(self) -> str:
        """A few human-readable lines: per image the target and score, then the files."""
        model = self.data["model"]
        lines = [
            f"model   {model['path']}  ({model['layout']}, {model['mask_sites']} mask sites; "
            f"explains {model['explains']})",
            f"device  {self.data['device']}   methods {', '.join(self.data['methods'])}   "
            f"wall time {self.data['wall_time_s']:.1f} s",
        ]
        forced = [v for v in self.data["validation"] if not v["ok"]]
        if forced:
            lines.append(f"WARNING twin disagrees with onnxruntime ({forced[0]['first_divergence']}); forced")
        for item in self.data["images"]:
            prob = f"  p={item['probability']:.3f}" if item.get("probability") is not None else ""
            lines.append(f"image   {item['input']}: {item['target_label']}  score {item['score']:.3f}{prob}")
            for name in item["files"].values():
                lines.append(f"        -> {name}")
        lines.append(f"report  {self.path}")
        lines.append(f"page    {self.path.with_name('report.html')}")
        return "\n".join(lines)


def _model_info(path: Path, twin, choice) -> dict[str, Any]:
    return {
        "path": str(path),
        "producer": f"{twin.model.producer_name} {twin.model.producer_version}".strip(),
        "opset": twin.clean_graph.opsets.get(""),
        "input": {"name": twin.inputs[0].name, "shape": list(twin.inputs[0].shape or ())},
        "layout": twin.layout,
        "layout_reason": twin.clean_graph.layout_reason,
        "output": choice.to_dict(),
        "mask_sites": len(twin.mask_sites),
        "passes_applied": list(twin.passes_applied),
        "explains": f"output '{choice.name}'"
        + (f" as logits (terminal {twin.output_activation[0]} split off)" if twin.output_activation else ""),
    }


def _method_options(method: Any) -> dict[str, Any]:
    return {k: v for k, v in method.options.items() if isinstance(v, (int, float, str, bool, type(None)))}


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return {k: _jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj

"""Resolve external tensor data strictly inside the model's own folder.

Every reference is checked (relative, no escape through ``..`` or symlinks, an
existing regular file, offset and length inside it, length matching the declared
size) before any byte is read; then the bytes are read here, not by onnx's loader.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import onnx

from dmbp_onnx.errors import ExternalDataError
from dmbp_onnx.graph.limits import declared_nbytes


def all_tensors(model: onnx.ModelProto) -> Iterator[tuple[str, onnx.TensorProto]]:
    """Every tensor stored in the model: initializers and tensor attributes of nodes.

    Yields
    ------
    (str, onnx.TensorProto)
        A label naming where the tensor lives, and the tensor.
    """
    for tensor in model.graph.initializer:
        yield f"initializer '{tensor.name}'", tensor
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield f"attribute '{attr.name}' of node '{node.name}' ({node.op_type})", attr.t
            for k, tensor in enumerate(attr.tensors):
                yield f"attribute '{attr.name}'[{k}] of node '{node.name}' ({node.op_type})", tensor


def has_external_data(model: onnx.ModelProto) -> bool:
    """Whether any tensor of ``model`` keeps its bytes in an external file."""
    return any(t.data_location == onnx.TensorProto.EXTERNAL for _, t in all_tensors(model))


def _resolve(label: str, tensor: onnx.TensorProto, folder: Path) -> tuple[Path, int, int | None]:
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    if not location or "\x00" in location:
        raise ExternalDataError(f"{label}: external data has no valid location")
    if Path(location).is_absolute() or location.startswith(("/", "\\")) or location[1:2] == ":":
        raise ExternalDataError(f"{label}: external data location '{location}' is an absolute path")
    lexical = Path(os.path.normpath(folder / location))
    target = lexical.resolve() if lexical.is_relative_to(folder) else lexical
    if not target.is_relative_to(folder):
        raise ExternalDataError(
            f"{label}: external data location '{location}' escapes the model's folder {folder}"
        )
    if not target.is_file():
        raise ExternalDataError(f"{label}: external data file '{location}' does not exist in {folder}")
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError:
        raise ExternalDataError(f"{label}: external data offset/length is not an integer") from None
    size = target.stat().st_size
    if offset < 0 or (length is not None and length < 0):
        raise ExternalDataError(f"{label}: negative external data offset or length")
    expected = declared_nbytes(tensor)
    span = size - offset if length is None else length
    if offset + span > size:
        raise ExternalDataError(
            f"{label}: external data [{offset}, {offset + span}) lies past the end of "
            f"'{location}' ({size} bytes)"
        )
    if expected is not None and span != expected:
        raise ExternalDataError(
            f"{label}: external data holds {span} bytes but the tensor declares {expected}"
        )
    return target, offset, span


def resolve_external_data(model: onnx.ModelProto, folder: Path | None, max_bytes: int) -> int:
    """Check every external reference of ``model``, then read the data into it.

    Parameters
    ----------
    model : onnx.ModelProto
        Modified in place: external tensors get their bytes as ``raw_data``.
    folder : Path or None
        The model's own folder; None when the model came as bytes (external data refused).
    max_bytes : int
        Refuse when the external bytes exceed this.

    Returns
    -------
    int
        The number of external bytes read.

    Raises
    ------
    ExternalDataError
        Naming the tensor and the reason, before anything outside ``folder`` is touched.
    """
    external = [
        (label, t) for label, t in all_tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL
    ]
    if not external:
        return 0
    if folder is None:
        raise ExternalDataError(
            f"{external[0][0]}: the model uses external data, which needs a file path (got bytes)"
        )
    folder = folder.resolve()
    plans = [(tensor, *_resolve(label, tensor, folder)) for label, tensor in external]
    total = sum(span for *_, span in plans)
    if total > max_bytes:
        raise ExternalDataError(f"external data totals {total} bytes, more than the limit {max_bytes}")
    for tensor, target, offset, span in plans:
        with open(target, "rb") as handle:
            handle.seek(offset)
            tensor.raw_data = handle.read(span)
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
    return total

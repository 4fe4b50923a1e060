"""Read an ONNX model from a path or bytes, refusing hostile or malformed files.

Order: size limit, protobuf parse, header, local-function inlining, declared sizes
(no allocation), ops (control flow, domains), names, connectivity, external data
(checked, then read by us, only inside the model's folder), protobuf's 2 GiB limit, input
types, finite weights, onnx's checker, then shape inference. The checker and shape
inference run on a weightless copy (:mod:`dmbp_onnx.graph.skeleton`), whose inferred
annotations are copied back. Stale ``value_info`` annotations are dropped and
re-inferred rather than refused; inference failures that onnxruntime would tolerate
are logged, not raised.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
import onnx.inliner
from google.protobuf.message import DecodeError

from dmbp_onnx.errors import ModelLoadError
from dmbp_onnx.graph import structure
from dmbp_onnx.graph.external_data import resolve_external_data
from dmbp_onnx.graph.limits import check_value_shape
from dmbp_onnx.graph.skeleton import weightless

MAX_BYTES = 2 * 1024**3
"""Default limit on the model file plus its external data, in bytes."""

_log = logging.getLogger(__name__)


def _read(source: str | Path | bytes, max_bytes: int) -> tuple[bytes, Path | None]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise ModelLoadError(f"model is {len(data)} bytes, more than the limit {max_bytes}")
        return data, None
    path = Path(source)
    if not path.is_file():
        raise ModelLoadError(f"no such model file: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelLoadError(f"model file {path} is {size} bytes, more than the limit {max_bytes}")
    return path.read_bytes(), path.parent


def _parse(data: bytes) -> onnx.ModelProto:
    if not data:
        raise ModelLoadError("the model file is empty")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"not a valid ONNX protobuf (truncated or corrupt): {exc}") from None
    return model


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Check ``model`` with onnx's checker, then return it shape-inferred (or as is on failure)."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelLoadError(f"onnx checker: {str(exc).strip().splitlines()[0]}") from None
    except onnx.shape_inference.InferenceError as exc:
        _log.info("strict shape inference failed, continuing without it: %s", exc)
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except (onnx.shape_inference.InferenceError, RuntimeError) as exc:
        _log.info("shape inference failed, continuing without inferred shapes: %s", exc)
        return model


def _copy_annotations(source: onnx.GraphProto, target: onnx.GraphProto) -> None:
    """Give ``target`` the value_info and graph output types shape inference put in ``source``."""
    target.value_info.extend(source.value_info)
    for inferred, output in zip(source.output, target.output):
        output.CopyFrom(inferred)


def load_model(source: str | Path | bytes, max_bytes: int = MAX_BYTES) -> onnx.ModelProto:
    """Load, check and shape-infer a model, refusing hostile or malformed files.

    Parameters
    ----------
    source : str, Path or bytes
        Path of a ``.onnx`` file, or its serialized bytes (external data needs a path).
    max_bytes : int
        Largest accepted size of the file plus its external data (default 2 GiB).

    Returns
    -------
    onnx.ModelProto
        The model with external data read in, local functions inlined and shapes inferred.

    Raises
    ------
    ModelLoadError
        Unreadable, truncated, corrupt, empty, cyclic, dangling, duplicated, oversized,
        non-finite weights or rejected by onnx's checker.
    ExternalDataError
        External data missing, outside the model's folder, absolute, or given bytes.
    UnsupportedModelError
        Well formed but unsupported: control flow, custom domains, non-float inputs,
        unknown opset (:class:`~dmbp_onnx.errors.UnsupportedOpError` names the node).
    """
    data, folder = _read(source, max_bytes)
    model = _parse(data)
    budget = max_bytes - len(data)
    del data
    structure.check_header(model)
    opsets = structure.imported_opsets(model)
    if model.functions:
        structure.check_function_expansion(model)
        try:
            model = onnx.inliner.inline_local_functions(model)
        except Exception as exc:  # noqa: BLE001 - any inliner failure means a broken function
            raise ModelLoadError(f"cannot inline the model's local functions: {exc}") from None
    non_finite = structure.check_declarations(model)
    structure.check_ops(model, opsets)
    structure.check_names(model)
    structure.check_connected(model)
    resolve_external_data(model, folder, budget)
    skeleton = weightless(model)
    if skeleton.full_size >= 2**31:
        raise ModelLoadError("the model with its external data exceeds protobuf's 2 GiB limit")
    structure.check_inputs(model)
    structure.check_finite(model, non_finite)
    del model.graph.value_info[:], skeleton.model.graph.value_info[:]
    inferred = _infer_shapes(skeleton.model)
    for value in inferred.graph.value_info:
        check_value_shape("inferred shape of", value)
    _copy_annotations(inferred.graph, model.graph)
    return model

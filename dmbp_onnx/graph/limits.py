"""Size limits checked on declarations only, so a hostile file cannot make us allocate."""

from __future__ import annotations

import onnx

from dmbp_onnx.errors import ModelLoadError

MAX_ELEMENTS = 2**31
"""Refuse any tensor or shape declaring more elements than this."""

_ITEMSIZE = {
    onnx.TensorProto.FLOAT: 4, onnx.TensorProto.DOUBLE: 8, onnx.TensorProto.FLOAT16: 2,
    onnx.TensorProto.BFLOAT16: 2, onnx.TensorProto.INT8: 1, onnx.TensorProto.UINT8: 1,
    onnx.TensorProto.INT16: 2, onnx.TensorProto.UINT16: 2, onnx.TensorProto.INT32: 4,
    onnx.TensorProto.UINT32: 4, onnx.TensorProto.INT64: 8, onnx.TensorProto.UINT64: 8,
    onnx.TensorProto.BOOL: 1, onnx.TensorProto.COMPLEX64: 8, onnx.TensorProto.COMPLEX128: 16,
}  # fmt: skip
# Which repeated field holds the values of each type when raw_data is not used.
_TYPED_FIELD = {
    onnx.TensorProto.FLOAT: "float_data", onnx.TensorProto.DOUBLE: "double_data",
    onnx.TensorProto.INT64: "int64_data", onnx.TensorProto.UINT64: "uint64_data",
    onnx.TensorProto.UINT32: "uint64_data", onnx.TensorProto.COMPLEX64: "float_data",
    onnx.TensorProto.COMPLEX128: "double_data",
}  # fmt: skip


def declared_elements(tensor: onnx.TensorProto) -> int:
    """Number of elements the tensor's dims declare (no data is touched)."""
    count = 1
    for dim in tensor.dims:
        count *= int(dim)
    return count


def declared_nbytes(tensor: onnx.TensorProto) -> int | None:
    """Bytes the declared dims need, or None for types without a fixed item size."""
    itemsize = _ITEMSIZE.get(tensor.data_type)
    return None if itemsize is None else declared_elements(tensor) * itemsize


def check_tensor_declaration(label: str, tensor: onnx.TensorProto) -> bytes | None:
    """Refuse negative or absurd dims and stored data that does not match them.

    Returns
    -------
    bytes or None
        The tensor's ``raw_data``, which the check had to copy out of the protobuf (so that
        a caller needing the values need not copy it again); None when it has none.

    Raises
    ------
    ModelLoadError
        Naming ``label`` (where the tensor lives) and the problem.
    """
    if any(int(d) < 0 for d in tensor.dims):
        raise ModelLoadError(f"{label} has a negative dimension {list(tensor.dims)}")
    count = declared_elements(tensor)
    if count > MAX_ELEMENTS:
        raise ModelLoadError(
            f"{label} declares dims {list(tensor.dims)} = {count} elements, more than 2**31"
        )
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return None
    expected = declared_nbytes(tensor)
    if tensor.HasField("raw_data"):
        raw = tensor.raw_data
        if expected is not None and len(raw) != expected:
            raise ModelLoadError(
                f"{label} declares dims {list(tensor.dims)} ({expected} bytes) but stores {len(raw)} bytes"
            )
        return raw
    if tensor.data_type == onnx.TensorProto.STRING:
        field = "string_data"
    elif tensor.data_type in _ITEMSIZE:
        field = _TYPED_FIELD.get(tensor.data_type, "int32_data")
    else:
        return None  # packed or exotic element types: onnx's checker judges them
    stored = len(getattr(tensor, field))
    complex_types = (onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128)
    needed = count * (2 if tensor.data_type in complex_types else 1)
    if stored != needed:
        raise ModelLoadError(
            f"{label} declares dims {list(tensor.dims)} ({count} elements) but stores {stored} values"
        )
    return None


def check_value_shape(label: str, value: onnx.ValueInfoProto) -> None:
    """Refuse a declared shape with negative dims or more than 2**31 elements.

    Symbolic (dynamic) dimensions count as 1.
    """
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return
    count = 1
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            if dim.dim_value < 0:
                raise ModelLoadError(f"{label} '{value.name}' has a negative dimension {dim.dim_value}")
            count *= dim.dim_value
    if count > MAX_ELEMENTS:
        raise ModelLoadError(
            f"{label} '{value.name}' declares a shape of {count} elements, more than 2**31"
        )

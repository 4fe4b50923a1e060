"""What a model declares of its graph tensors: one reader of names, shapes and dtypes (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output as the model declares it.

    Attributes
    ----------
    name : str
        Tensor name.
    shape : tuple of (int or str or None), or None
        Declared dimensions (str or None where dynamic); None when no shape is declared.
    dtype : numpy.dtype or None
        Declared element type; None when it has no numpy equivalent (bfloat16, float8).
    """

    name: str
    shape: tuple | None
    dtype: np.dtype | None


def declared_shape(value: onnx.ValueInfoProto) -> tuple | None:
    """The dimensions ``value`` declares (str or None where dynamic), or None without a shape."""
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)


def value_spec(value: onnx.ValueInfoProto) -> TensorSpec:
    """The :class:`TensorSpec` of a ``ValueInfoProto``."""
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
    except (KeyError, TypeError, ValueError):
        dtype = None
    return TensorSpec(value.name, declared_shape(value), dtype)


def tensor_spec(tensor) -> TensorSpec:
    """The :class:`TensorSpec` of a graph-surgeon tensor (an input or output of a cleaned graph)."""
    try:
        dtype = np.dtype(tensor.dtype) if tensor.dtype is not None else None
    except TypeError:  # an ONNX type number numpy cannot name (bfloat16, float8)
        dtype = None
    return TensorSpec(tensor.name, tuple(tensor.shape) if tensor.shape is not None else None, dtype)


def declared_inputs(model: onnx.ModelProto) -> list[TensorSpec]:
    """The graph inputs of ``model`` that are not initializers, as declared."""
    initializers = {t.name for t in model.graph.initializer}
    return [value_spec(v) for v in model.graph.input if v.name not in initializers]

"""The graph inputs a model declares, random values for them, and checks of user values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import onnx
import torch

from dmbp_onnx.errors import InputError
from dmbp_onnx.validate.device import _to_numpy


@dataclass(frozen=True)
class InputSpec:
    """A graph input as the ONNX file declares it.

    Attributes
    ----------
    name : str
        Tensor name.
    shape : list of (int or str or None), or None
        Declared dimensions (str or None where dynamic); None when no shape is declared.
    dtype : numpy.dtype or None
        Declared element type; None when it has no numpy equivalent.
    """

    name: str
    shape: list | None
    dtype: np.dtype | None


def declared_inputs(model: onnx.ModelProto) -> list[InputSpec]:
    """The graph inputs of ``model`` that are not initializers, as declared."""
    initializers = {t.name for t in model.graph.initializer}
    specs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        shape = None
        if tensor.HasField("shape"):
            shape = [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim
            ]
        try:
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))
        except (KeyError, TypeError, ValueError):
            dtype = None
        specs.append(InputSpec(value.name, shape, dtype))
    return specs


def random_inputs(specs: Sequence[InputSpec], seed: int = 0) -> list[np.ndarray]:
    """Seeded standard-normal arrays of the declared shapes (dynamic dimensions -> 1).

    Raises
    ------
    InputError
        When an input declares no shape or is not floating point.
    """
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        if spec.shape is None:
            raise InputError(f"input '{spec.name}' declares no shape: pass its values explicitly")
        if spec.dtype is None or not np.issubdtype(spec.dtype, np.floating):
            raise InputError(
                f"input '{spec.name}' has type {spec.dtype}: random values are only drawn for "
                "floating point inputs; pass its values explicitly"
            )
        dims = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
        arrays.append(rng.standard_normal(dims).astype(spec.dtype))
    return arrays


def _shape_text(shape: Sequence | None) -> str:
    if shape is None:
        return "(undeclared)"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def check_inputs(specs: Sequence[InputSpec], inputs: Any) -> list[np.ndarray]:
    """Check user inputs against the declared inputs and return them as arrays, in order.

    Parameters
    ----------
    specs : sequence of InputSpec
        The declared inputs (:func:`declared_inputs`).
    inputs : array, tensor, sequence of them, or mapping of input name to array
        The values to feed.

    Raises
    ------
    InputError
        Wrong number of inputs, unknown names, wrong dtype, a shape that contradicts a
        static declared dimension, or NaN/Inf values; the message names the input.
    """
    names = [s.name for s in specs]
    if isinstance(inputs, Mapping):
        unknown = [k for k in inputs if k not in names]
        missing = [n for n in names if n not in inputs]
        if unknown or missing:
            raise InputError(
                f"the model's inputs are {names}; unknown: {unknown or 'none'}, missing: {missing or 'none'}"
            )
        values = [inputs[n] for n in names]
    elif isinstance(inputs, (np.ndarray, torch.Tensor)):
        values = [inputs]
    else:
        values = list(inputs)
    if len(values) != len(specs):
        raise InputError(f"the model expects {len(specs)} input(s) {names}, got {len(values)}")
    arrays = []
    for spec, value in zip(specs, values):
        array = _to_numpy(value)
        if spec.dtype is not None and array.dtype != spec.dtype:
            raise InputError(
                f"input '{spec.name}' has dtype {array.dtype}, the model declares {spec.dtype.name}"
            )
        if spec.shape is not None and (
            array.ndim != len(spec.shape)
            or any(isinstance(d, int) and d > 0 and d != n for d, n in zip(spec.shape, array.shape))
        ):
            raise InputError(
                f"input '{spec.name}' has shape {list(array.shape)}, the model declares "
                f"{_shape_text(spec.shape)}"
            )
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            raise InputError(f"input '{spec.name}' {list(array.shape)} contains NaN or Inf values")
        arrays.append(array)
    return arrays


def _expected_arrays(expected: Any, count: int, outputs: Sequence[np.ndarray], names: list[str]):
    values = [expected] if isinstance(expected, (np.ndarray, torch.Tensor)) else list(expected)
    if len(values) != count:
        raise InputError(f"got {len(values)} expected array(s), the model has {count} output(s) {names}")
    arrays = [_to_numpy(v) for v in values]
    for name, array, out in zip(names, arrays, outputs):
        if array.shape != out.shape:
            raise InputError(
                f"expected array for output '{name}' has shape {list(array.shape)}, "
                f"the model produces {list(out.shape)}"
            )
    return arrays

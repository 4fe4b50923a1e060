"""Random values for the graph inputs a model declares (``graph.specs.declared_inputs``), and checks of user values."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from dmbp_onnx.device import to_numpy
from dmbp_onnx.errors import InputError
from dmbp_onnx.graph.specs import TensorSpec, declared_inputs  # noqa: F401  (declared_inputs: re-exported)


DEFAULT_BATCH = 1
"""Size given to a dynamic first (batch) dimension in random inputs."""

DEFAULT_SPATIAL = 224
"""Size given to every other dynamic dimension in random inputs (height, width, ...).

1 x 1 images break fully-convolutional models (a 3 x 3 convolution without padding, a pool);
224 is what most image models were trained at. Choose another with ``shapes``
(``validate --shape NAME=1x3x320x320``).
"""


def parse_shape(text: str) -> tuple[str, list[int]]:
    """``NAME=D0xD1x...`` (as ``validate --shape`` takes it) as ``(name, dims)``.

    Raises
    ------
    InputError
        When the text is not ``NAME=`` followed by positive integers joined by ``x``.
    """
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise InputError(f"--shape '{text}': expected NAME=D0xD1x... (e.g. x=1x3x224x224)")
    try:
        values = [int(d) for d in dims.lower().split("x")]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise InputError(
            f"--shape '{text}': the shape of input '{name}' must be positive integers joined by 'x' "
            "(e.g. 1x3x224x224)"
        )
    return name, values


def _is_dynamic(dim) -> bool:
    return not (isinstance(dim, int) and dim > 0)


def seeded_shapes(specs: Sequence[TensorSpec], shapes: Mapping[str, Sequence[int]] | None = None) -> list[list[int]]:
    """The shapes of the random inputs: ``shapes[name]`` where given, else the declared shape.

    A dynamic dimension becomes :data:`DEFAULT_BATCH` (1) when it is the first one and
    :data:`DEFAULT_SPATIAL` (224) otherwise, unless a shape given for another input binds the
    same symbolic name (e.g. ``H``), whose size it then takes.

    Raises
    ------
    InputError
        A name that is not a graph input, a given shape whose rank or static dimensions
        contradict the declared ones, or an input that declares no shape and has none given;
        the message names the input.
    """
    given = {name: [int(d) for d in dims] for name, dims in (shapes or {}).items()}
    names = [s.name for s in specs]
    unknown = [n for n in given if n not in names]
    if unknown:
        raise InputError(f"a shape is given for input '{unknown[0]}', but the model's inputs are {names}")
    bound: dict[str, int] = {}
    for spec in specs:
        dims = given.get(spec.name)
        if dims is None or spec.shape is None:
            continue
        if len(dims) != len(spec.shape) or any(
            not _is_dynamic(d) and d != n for d, n in zip(spec.shape, dims)
        ):
            raise InputError(
                f"the shape {dims} given for input '{spec.name}' contradicts the declared "
                f"{_shape_text(spec.shape)}"
            )
        for d, n in zip(spec.shape, dims):
            if isinstance(d, str):
                bound.setdefault(d, n)
    result = []
    for spec in specs:
        if spec.name in given:
            result.append(given[spec.name])
        elif spec.shape is None:
            raise InputError(f"input '{spec.name}' declares no shape: pass its values or its shape explicitly")
        else:
            result.append([_default_dim(i, d, bound) for i, d in enumerate(spec.shape)])
    return result


def _default_dim(index: int, dim, bound: Mapping[str, int]) -> int:
    if not _is_dynamic(dim):
        return dim
    default = DEFAULT_BATCH if index == 0 else DEFAULT_SPATIAL
    return bound.get(dim, default) if isinstance(dim, str) else default


def random_inputs(
    specs: Sequence[TensorSpec], seed: int = 0, shapes: Mapping[str, Sequence[int]] | None = None
) -> list[np.ndarray]:
    """Seeded standard-normal arrays of the shapes :func:`seeded_shapes` chooses.

    By default the declared shapes, a dynamic first (batch) dimension 1 and every other
    dynamic dimension 224 (:data:`DEFAULT_SPATIAL`); ``shapes`` maps an input name to the
    shape to use instead (it must agree with the declared rank and static dimensions).

    Raises
    ------
    InputError
        When an input declares no shape (and none is given), is not floating point, or a
        given shape is unusable (see :func:`seeded_shapes`).
    """
    for spec in specs:
        if spec.dtype is None or not np.issubdtype(spec.dtype, np.floating):
            raise InputError(
                f"input '{spec.name}' has type {spec.dtype}: random values are only drawn for "
                "floating point inputs; pass its values explicitly"
            )
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(dims).astype(spec.dtype) for spec, dims in zip(specs, seeded_shapes(specs, shapes))]


def _shape_text(shape: Sequence | None) -> str:
    if shape is None:
        return "(undeclared)"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def check_inputs(specs: Sequence[TensorSpec], inputs: Any) -> list[np.ndarray]:
    """Check user inputs against the declared inputs and return them as arrays, in order.

    Parameters
    ----------
    specs : sequence of TensorSpec
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
        array = to_numpy(value)
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
    arrays = [to_numpy(v) for v in values]
    for name, array, out in zip(names, arrays, outputs):
        if array.shape != out.shape:
            raise InputError(
                f"expected array for output '{name}' has shape {list(array.shape)}, "
                f"the model produces {list(out.shape)}"
            )
    return arrays

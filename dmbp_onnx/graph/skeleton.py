"""A weightless stand-in for a model, for onnx's checker and shape inference.

``onnx.checker.check_model`` and ``onnx.shape_inference.infer_shapes`` serialise the
model, parse it again in C++ and (inference) serialise and parse the result back, all
with the weights, though neither reads the values of a large float weight. Both are
run instead on a copy whose large float initializers became graph inputs of the same
type and static shape. Everything else is copied as is: small and integer tensors
(Reshape shapes, Slice starts, ...) stay initializers, so data-propagating inference
sees every constant it can use, and the stripped tensors are only those that onnx's
checker would accept anyway (a float type, ``raw_data`` of exactly the declared size,
no other value field, stored in the file).
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from dmbp_onnx.graph.limits import declared_nbytes
from dmbp_onnx.graph.structure import FLOAT_TYPES

STRIP_BYTES = 1 << 14
"""Float initializers of at least this many bytes are left out of the weightless copy."""

_VALUE_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


@dataclass
class Weightless:
    """A model's weightless copy.

    Attributes
    ----------
    model : onnx.ModelProto
        The copy: the large float initializers are graph inputs of the same type and shape.
    stripped : list of str
        Names of the initializers left out.
    full_size : int
        Serialized size in bytes of the original model (computed without serialising its weights).
    """

    model: onnx.ModelProto
    stripped: list[str]
    full_size: int


def copy_fields(source: Message, target: Message, skip: frozenset[str] = frozenset()) -> None:
    """Copy every present field but those in ``skip`` (which are not even read)."""
    for field in source.DESCRIPTOR.fields:
        if field.name in skip:
            continue
        value = getattr(source, field.name)
        if field.is_repeated:
            if len(value):
                getattr(target, field.name).extend(value)
        elif source.HasField(field.name):
            if field.message_type is not None:
                getattr(target, field.name).CopyFrom(value)
            else:
                setattr(target, field.name, value)


def _static_type_matches(value: onnx.ValueInfoProto, tensor: onnx.TensorProto) -> bool:
    tensor_type = value.type.tensor_type
    if not value.type.HasField("tensor_type") or not tensor_type.HasField("shape"):
        return False
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    return tensor_type.elem_type == tensor.data_type and dims == list(tensor.dims)


def strippable(tensor: onnx.TensorProto, declared: onnx.ValueInfoProto | None, ir_version: int) -> bool:
    """Whether ``tensor`` (an initializer) may become a graph input in the weightless copy.

    Only a large float tensor in ``raw_data`` (whose size
    :func:`~dmbp_onnx.graph.limits.check_tensor_declaration` already matched to its dims),
    with no other value field, stored in the model: onnx's checker accepts it whatever its
    values, and no shape inference reads float values that large. A graph input of the same name must declare exactly its
    type and static shape (else onnx's own initializer/input agreement check is kept), and a
    model before IR 4 must declare it as an input.
    """
    if tensor.data_type not in FLOAT_TYPES or not tensor.name or not tensor.HasField("raw_data"):
        return False
    if tensor.HasField("segment") or tensor.external_data or tensor.data_location != onnx.TensorProto.DEFAULT:
        return False
    if any(len(getattr(tensor, name)) for name in _VALUE_FIELDS):
        return False
    nbytes = declared_nbytes(tensor)
    if nbytes is None or nbytes < STRIP_BYTES:
        return False
    if declared is None:
        return ir_version >= 4
    return _static_type_matches(declared, tensor)


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _field_size(length: int) -> int:
    """Serialized size of a length-delimited field with a one-byte tag (field numbers < 16)."""
    return 1 + _varint_size(length) + length


def _stripped_tensor_size(tensor: onnx.TensorProto) -> int:
    """Serialized size of ``tensor`` computed from a copy without its ``raw_data`` bytes."""
    stub = onnx.TensorProto()
    copy_fields(tensor, stub, frozenset({"raw_data"}))
    stub.raw_data = b""  # encoded as its tag and a zero length
    length = declared_nbytes(tensor)
    return stub.ByteSize() - 1 + _varint_size(length) + length


def _full_size(model: onnx.ModelProto, copy: onnx.ModelProto, stripped: list[onnx.TensorProto],
               added: list[onnx.ValueInfoProto]) -> int:  # fmt: skip
    """Serialized size of ``model`` from its copy, without serialising the stripped weights.

    The copy holds every other field of ``model`` and ``model.graph`` byte for byte; unknown
    fields, which a field-wise copy drops, send it to ``model.ByteSize()`` instead.
    """
    if any(len(UnknownFieldSet(m)) for m in (model, model.graph, *stripped)):
        return model.ByteSize()
    copy_graph = copy.graph.ByteSize()
    graph = (
        copy_graph
        - sum(_field_size(v.ByteSize()) for v in added)
        + sum(_field_size(_stripped_tensor_size(t)) for t in stripped)
    )
    return copy.ByteSize() - _field_size(copy_graph) + _field_size(graph)


def weightless(model: onnx.ModelProto) -> Weightless:
    """Copy ``model`` with its large float initializers turned into typed graph inputs.

    Parameters
    ----------
    model : onnx.ModelProto
        With external data already read in and tensor declarations checked; not modified.

    Returns
    -------
    Weightless
        The copy, the stripped names and the original's serialized size.
    """
    copy = onnx.ModelProto()
    copy_fields(model, copy, frozenset({"graph"}))
    graph, target = model.graph, copy.graph
    copy_fields(graph, target, frozenset({"initializer"}))
    declared = {v.name: v for v in graph.input}
    stripped: list[onnx.TensorProto] = []
    added: list[onnx.ValueInfoProto] = []
    for tensor in graph.initializer:
        if not strippable(tensor, declared.get(tensor.name), model.ir_version):
            target.initializer.append(tensor)
            continue
        stripped.append(tensor)
        if tensor.name not in declared:
            added.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    target.input.extend(added)
    return Weightless(copy, [t.name for t in stripped], _full_size(model, copy, stripped, added))

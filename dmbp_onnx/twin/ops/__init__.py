"""Op converters, one module per op family; importing this package registers them all."""

from dmbp_onnx.twin.ops import activation, conv  # noqa: F401

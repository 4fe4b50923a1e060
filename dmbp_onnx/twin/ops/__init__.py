"""Op converters, one module per op family; importing this package registers them all."""

from dmbp_onnx.twin.ops import (  # noqa: F401
    activation,
    cast,
    conv,
    elementwise,
    gather,
    linear,
    norm,
    pad,
    pool,
    reduce,
    resize,
    shape,
)

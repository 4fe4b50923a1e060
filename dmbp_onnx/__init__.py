"""dmbp-onnx: explain any ReLU CNN from its ONNX file.

The public API is flat: :func:`load` builds a :class:`Twin` (:func:`from_torch` from a live
PyTorch module); :func:`validate`
proves it against onnxruntime; the attribution methods share one contract,
``Method(twin, **options).attribute(x, target=None) -> Attribution``.
"""

from dmbp_onnx.errors import (
    DmbpOnnxError,
    IneligibleModelError,
    InputError,
    MismatchError,
    ModelLoadError,
    UnsupportedModelError,
    UnsupportedOpError,
)
from dmbp_onnx.methods import (
    DMBP,
    METHODS,
    Attribution,
    BoxTarget,
    GradCAM,
    Gradient,
    GradientXInput,
    GuidedBackprop,
    IntegratedGradients,
    SmoothGrad,
)
from dmbp_onnx.twin.from_torch import from_torch
from dmbp_onnx.twin.twin import Twin, load
from dmbp_onnx.validate import ValidationReport, validate

__version__ = "0.1.0"

__all__ = [
    "Attribution",
    "BoxTarget",
    "DMBP",
    "GradCAM",
    "Gradient",
    "GradientXInput",
    "GuidedBackprop",
    "IntegratedGradients",
    "METHODS",
    "SmoothGrad",
    "DmbpOnnxError",
    "IneligibleModelError",
    "InputError",
    "MismatchError",
    "ModelLoadError",
    "Twin",
    "UnsupportedModelError",
    "UnsupportedOpError",
    "ValidationReport",
    "from_torch",
    "load",
    "validate",
]

"""dmbp-onnx: explain any ReLU CNN from its ONNX file.

The public API is flat: :func:`load` builds a :class:`Twin` (:func:`from_torch` from a live
PyTorch module); :func:`validate`
proves it against onnxruntime; the attribution methods share one contract,
``Method(twin, **options).attribute(x, target=None) -> Attribution``.
"""

import importlib as _importlib
import sys as _sys
import types as _types
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from dmbp_onnx.errors import (
    DmbpOnnxError,
    IneligibleModelError,
    InputError,
    LayoutError,
    MismatchError,
    ModelLoadError,
    UnsupportedModelError,
    UnknownOutputError,
    UnsupportedOpError,
)

if _TYPE_CHECKING:  # the torch side is imported on first attribute access (see __getattr__)
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
        LRP,
        RegionTarget,
        SmoothGrad,
    )
    from dmbp_onnx.twin.from_torch import from_torch
    from dmbp_onnx.twin.twin import Twin, load
    from dmbp_onnx.validate import ValidationReport, validate

# The public names of ``__all__`` that are not defined here live on the torch side and are
# resolved lazily: ``import dmbp_onnx`` (and the graph side, and ``dmbp-onnx inspect``) work
# without torch. Each lives in ``dmbp_onnx.methods`` unless named here.
_ELSEWHERE = {
    "from_torch": "dmbp_onnx.twin.from_torch",
    "Twin": "dmbp_onnx.twin.twin",
    "load": "dmbp_onnx.twin.twin",
    "ValidationReport": "dmbp_onnx.validate",
    "validate": "dmbp_onnx.validate",
}


def __getattr__(name: str) -> _Any:
    """Import the torch-side public names on first access (PEP 562)."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(_ELSEWHERE.get(name, "dmbp_onnx.methods")), name)
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    public = {n for n in globals() if not n.startswith("_") or n.startswith("__")}
    return sorted(public | set(__all__))


class _Package(_types.ModuleType):
    """Keeps ``dmbp_onnx.validate`` the function once the subpackage of that name is imported.

    Importing ``dmbp_onnx.validate`` (the subpackage) binds it as an attribute of this
    package, which would shadow the lazily resolved function of the same name.
    """

    def __setattr__(self, name: str, value: _Any) -> None:
        if name == "validate" and isinstance(value, _types.ModuleType):
            value = value.validate
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


__version__ = "0.1.0"

__all__ = [
    "DmbpOnnxError",
    "IneligibleModelError",
    "InputError",
    "LayoutError",
    "MismatchError",
    "ModelLoadError",
    "UnknownOutputError",
    "UnsupportedModelError",
    "UnsupportedOpError",
    # the torch side (see __getattr__)
    "Attribution",
    "BoxTarget",
    "DMBP",
    "GradCAM",
    "Gradient",
    "GradientXInput",
    "GuidedBackprop",
    "IntegratedGradients",
    "LRP",
    "METHODS",
    "RegionTarget",
    "SmoothGrad",
    "Twin",
    "ValidationReport",
    "from_torch",
    "load",
    "validate",
]

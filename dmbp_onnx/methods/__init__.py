"""Attribution methods; one contract: ``Method(twin, **options).attribute(x, target) -> Attribution``."""

from dmbp_onnx.methods.base import Attribution, Method
from dmbp_onnx.methods.baselines import Gradient, GradientXInput, IntegratedGradients, SmoothGrad
from dmbp_onnx.methods.dmbp import DMBP
from dmbp_onnx.methods.gradcam import GradCAM
from dmbp_onnx.methods.guided import GuidedBackprop
from dmbp_onnx.methods.lrp import LRP
from dmbp_onnx.methods.target import BoxTarget, RegionTarget

def _registered() -> dict[str, type]:
    """:data:`dmbp_onnx.options.METHOD_CLASSES` with the classes imported."""
    import importlib

    from dmbp_onnx.options import METHOD_CLASSES

    found = {}
    for name, path in METHOD_CLASSES.items():
        module, cls = path.split(":")
        found[name] = getattr(importlib.import_module(module), cls)
        if found[name].name != name:
            raise ImportError(f"{path} is registered as {name!r} but calls itself {found[name].name!r}")
    return found


#: CLI name -> method class (the registry: :data:`dmbp_onnx.options.METHOD_CLASSES`).
METHODS: dict[str, type] = _registered()

__all__ = [
    "METHODS",
    "Attribution",
    "BoxTarget",
    "DMBP",
    "GradCAM",
    "Gradient",
    "GradientXInput",
    "GuidedBackprop",
    "IntegratedGradients",
    "LRP",
    "Method",
    "RegionTarget",
    "SmoothGrad",
]

"""Attribution methods; one contract: ``Method(twin, **options).attribute(x, target) -> Attribution``."""

from dmbp_onnx.methods.base import Attribution, Method
from dmbp_onnx.methods.baselines import Gradient, GradientXInput, IntegratedGradients, SmoothGrad
from dmbp_onnx.methods.dmbp import DMBP
from dmbp_onnx.methods.gradcam import GradCAM
from dmbp_onnx.methods.guided import GuidedBackprop
from dmbp_onnx.methods.lrp import LRP
from dmbp_onnx.methods.target import BoxTarget, RegionTarget

#: CLI name -> method class.
METHODS: dict[str, type] = {
    cls.name: cls
    for cls in (DMBP, Gradient, GradientXInput, IntegratedGradients, SmoothGrad, GuidedBackprop, GradCAM, LRP)
}

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

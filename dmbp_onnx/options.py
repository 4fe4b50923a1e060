"""Option values that torch-free code (the command line's parser, dataset job specs) must know.

The torch side reads them from here (the method registry) or keys its tables by them (a test keeps
those equal).
"""

from __future__ import annotations

#: DMBP's ``rule`` values, default first: the keys of ``dmbp_onnx.methods.dmbp.method.RULES``.
DMBP_RULES = ("lrp-gamma", "gradient")

#: The method registry: CLI name -> ``module:Class`` of the method, in the order the CLI lists them.
#: ``dmbp_onnx.methods.METHODS`` imports the classes from here; each class's ``name`` is its key.
METHOD_CLASSES = {
    "dmbp": "dmbp_onnx.methods.dmbp:DMBP",
    "gradient": "dmbp_onnx.methods.baselines:Gradient",
    "gradxinput": "dmbp_onnx.methods.baselines:GradientXInput",
    "ig": "dmbp_onnx.methods.baselines:IntegratedGradients",
    "smoothgrad": "dmbp_onnx.methods.baselines:SmoothGrad",
    "guidedbp": "dmbp_onnx.methods.guided:GuidedBackprop",
    "gradcam": "dmbp_onnx.methods.gradcam:GradCAM",
    "lrp": "dmbp_onnx.methods.lrp:LRP",
}

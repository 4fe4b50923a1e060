"""Grad-CAM (Selvaraju et al. 2017) on a mask site's activation, upsampled to the input."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dmbp_onnx.errors import InputError, UnsupportedModelError
from dmbp_onnx.methods.base import Attribution, Method
from dmbp_onnx.methods.target import resolve_targets

_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


class GradCAM(Method):
    """Grad-CAM: channel weights = spatial mean of the score's gradient at a conv layer's output.

    Parameters
    ----------
    twin : Twin
        The model.
    layer : str, optional
        A mask site name or the ONNX name of a Conv node; default: the last Conv.
    device : str
        "auto" = CUDA when available.

    Notes
    -----
    The signed map is ``sum_c w_c A_c`` *without* the customary ReLU (Captum's
    ``relu_attributions=False``; ``positive`` is the usual rectified Grad-CAM),
    upsampled (bi/trilinear, ``align_corners=False``) to the input's spatial size
    and divided evenly over the input channels, so :meth:`Attribution.pixel_map`
    returns the map itself. ``extras["cam"]`` is the map at the layer's resolution,
    ``extras["layer"]`` the site used.
    """

    name = "gradcam"

    def __init__(self, twin, layer: str | None = None, device: str = "auto") -> None:
        super().__init__(twin, device)
        convs = [s for s in twin.mask_sites if s.op in ("Conv", "ConvTranspose")]
        if layer is None:
            if not convs:
                raise UnsupportedModelError("Grad-CAM needs a Conv layer; the model has none")
            self.site = convs[-1]
        else:
            match = [s for s in convs if layer in (s.name, s.onnx_node)]
            if not match:
                raise InputError(
                    f"Grad-CAM layer {layer!r} is not a Conv of the model; choose one of "
                    f"{[s.onnx_node for s in convs]}"
                )
            self.site = match[0]
        self.options["layer"] = self.site.onnx_node
        if twin.layout not in ("NCHW", "NHWC", "NCW", "NWC", "NCDHW", "NDHWC"):
            raise UnsupportedModelError(f"Grad-CAM needs a known input layout, got {twin.layout!r}")

    def _attribute(self, x: torch.Tensor, target) -> Attribution:
        captured = []
        handle = self.module.get_submodule(self.site.name).register_forward_hook(
            lambda module, inputs, output: captured.append(output)
        )
        try:
            xd = x.to(self.device).requires_grad_(True)
            out = self.run(xd)
        finally:
            handle.remove()
        targets, selector = resolve_targets(out, target)
        act = captured[0]
        (grad,) = torch.autograd.grad(out, act, grad_outputs=selector)
        spatial = tuple(range(2, act.dim()))
        cam = (grad.mean(spatial, keepdim=True) * act).sum(1, keepdim=True).detach()
        axis = self.twin.channel_axis
        size = [x.shape[a] for a in range(1, x.dim()) if a != axis % x.dim()]
        up = F.interpolate(cam, size=size, mode=_MODES[len(size)], align_corners=False)[:, 0]
        signed = (up / x.shape[axis]).unsqueeze(axis).expand(x.shape).contiguous()
        score = (out.detach() * selector).flatten(1).sum(1)
        return Attribution.from_signed(
            self.name, signed, target=targets, score=score.cpu(), explains=self.explains,
            extras={"cam": cam[:, 0].cpu(), "layer": self.site.name}, channel_axis=axis,
        )  # fmt: skip

"""Resize (opset 10, 11, 13, 18, 19) and Upsample (opset 7, 9): nearest and linear.

Each resized axis maps output coordinates to input coordinates with onnxruntime's
float32 formulas, then gathers (nearest) or blends two neighbours (linear), one
axis at a time. Supported: coordinate modes half_pixel, pytorch_half_pixel,
align_corners, asymmetric; nearest modes round_prefer_floor, round_prefer_ceil,
floor, ceil (and the legacy rule of Upsample/Resize-10); scales or sizes,
optionally on ``axes`` (18+). Cubic, antialias, exclude_outside,
keep_aspect_ratio_policy other than stretch, and other coordinate modes are refused.
"""

from __future__ import annotations

import numpy as np
import torch

from dmbp_onnx.twin.ops.common import ConstantsOp, bind, float_list, int_list
from dmbp_onnx.twin.registry import Converted, NodeContext, converter

COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
LEGACY = "legacy"


def source_coordinates(out_size: int, in_size: int, scale: float, mode: str, device) -> torch.Tensor:
    """Input coordinate (float32) of each output position along one axis."""
    x = torch.arange(out_size, dtype=torch.float32, device=device)
    s = torch.tensor(np.float32(scale), device=device)
    if mode == "half_pixel":
        return (x + 0.5) / s - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / s - 0.5 if out_size > 1 else torch.zeros_like(x)
    if mode == "align_corners":
        if out_size == 1:
            return torch.zeros_like(x)
        return x * np.float32(in_size - 1) / np.float32(out_size - 1)
    return x / s


def _nearest_index(coords: torch.Tensor, mode: str, downsample: bool) -> torch.Tensor:
    floor = coords.floor()
    if mode == "round_prefer_floor":
        index = torch.where(coords - floor > 0.5, floor + 1, floor)
    elif mode == "round_prefer_ceil":
        index = torch.where(coords - floor >= 0.5, floor + 1, floor)
    elif mode == "floor":
        index = coords.floor()
    elif mode == "ceil":
        index = coords.ceil()
    else:
        index = coords.ceil() if downsample else coords.trunc()
    return index.to(torch.int64)


class ResizeOp(ConstantsOp):
    """Nearest or linear resize, axis by axis.

    Parameters
    ----------
    mode : {"nearest", "linear"}
        Interpolation.
    coordinate_mode : str
        One of :data:`COORDINATE_MODES`.
    nearest_mode : str
        One of :data:`NEAREST_MODES`, or ``"legacy"`` (Upsample / Resize-10).
    scales : list of float or None
        Constant scales (Upsample-7); otherwise taken from the inputs.
    axes : list of int or None
        Axes the scales/sizes refer to (opset 18+); None means every axis.
    """

    static_inputs = (2, 3)

    def __init__(self, mode, coordinate_mode, nearest_mode, scales=None, axes=None) -> None:
        super().__init__()
        self.mode, self.coordinate_mode, self.nearest_mode = mode, coordinate_mode, nearest_mode
        self.scales, self.axes = scales, axes

    def compute(self, x, roi=None, scales=None, sizes=None):
        rank = x.dim()
        axes = [a + rank if a < 0 else a for a in (self.axes or range(rank))]
        if self.scales is not None:
            scale_list = list(self.scales)
        elif scales is not None and len(float_list(scales)) > 0:
            scale_list = float_list(scales)
        else:
            scale_list = None
        if scale_list is not None:
            out_sizes = [int(np.float32(x.shape[a]) * np.float32(s)) for a, s in zip(axes, scale_list)]
        else:
            out_sizes = int_list(sizes)
            scale_list = [float(np.float32(o) / np.float32(x.shape[a])) for a, o in zip(axes, out_sizes)]
        for axis, out_size, scale in zip(axes, out_sizes, scale_list):
            in_size = x.shape[axis]
            if out_size == in_size and scale == 1.0:
                continue
            x = self._axis(x, axis, in_size, out_size, scale)
        return x

    def _axis(self, x, axis, in_size, out_size, scale):
        coords = source_coordinates(out_size, in_size, scale, self.coordinate_mode, x.device)
        if self.mode == "nearest":
            index = _nearest_index(coords, self.nearest_mode, scale < 1.0).clamp(0, in_size - 1)
            return torch.index_select(x, axis, index)
        coords = coords.clamp(0, in_size - 1)
        low = coords.to(torch.int64).clamp(max=in_size - 1)
        high = (low + 1).clamp(max=in_size - 1)
        frac = (coords - low.to(coords.dtype)).to(x.dtype)
        shape = [1] * x.dim()
        shape[axis] = out_size
        frac = frac.reshape(shape)
        a, b = torch.index_select(x, axis, low), torch.index_select(x, axis, high)
        return a + (b - a) * frac

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode}, coordinate_mode={self.coordinate_mode}, nearest_mode={self.nearest_mode}, "
            f"scales={self.scales}, axes={self.axes}"
        )


class LegacyResizeOp(ResizeOp):
    """Upsample-9 / Resize-10: inputs are ``(X, scales)``."""

    static_inputs = (1,)

    def compute(self, x, scales=None):
        return super().compute(x, None, scales, None)


def _mode(ctx: NodeContext) -> str:
    mode = ctx.attr("mode", "nearest")
    if mode not in ("nearest", "linear"):
        raise ctx.fail(f"mode '{mode}' is not supported")
    return mode


@converter("Resize", versions=(10, 11, 13, 18, 19))
def convert_resize(ctx: NodeContext) -> Converted:
    """Convert Resize (nearest / linear with the coordinate modes exporters write)."""
    mode = _mode(ctx)
    if ctx.since_version == 10:
        ctx.check_attributes({"mode"})
        return bind(ctx, LegacyResizeOp(mode, "asymmetric", LEGACY), n_inputs=2)
    allowed = {
        "coordinate_transformation_mode",
        "cubic_coeff_a",
        "exclude_outside",
        "extrapolation_value",
        "mode",
        "nearest_mode",
    }
    if ctx.since_version >= 18:
        allowed |= {"antialias", "axes", "keep_aspect_ratio_policy"}
    ctx.check_attributes(allowed)
    ctx.attr("cubic_coeff_a")
    ctx.attr("extrapolation_value")
    coordinate_mode = ctx.attr("coordinate_transformation_mode", "half_pixel")
    if coordinate_mode not in COORDINATE_MODES:
        raise ctx.fail(f"coordinate_transformation_mode '{coordinate_mode}' is not supported")
    nearest_mode = ctx.attr("nearest_mode", "round_prefer_floor")
    if nearest_mode not in NEAREST_MODES:
        raise ctx.fail(f"nearest_mode '{nearest_mode}' is not supported")
    for name, default in (("exclude_outside", 0), ("antialias", 0)):
        if int(ctx.attr(name, default)) != default:
            raise ctx.fail(f"{name}={ctx.attr(name)} is not supported")
    policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
    if policy != "stretch":
        raise ctx.fail(f"keep_aspect_ratio_policy '{policy}' is not supported")
    axes = ctx.attr("axes")
    axes = [int(a) for a in axes] if axes is not None else None
    return bind(ctx, ResizeOp(mode, coordinate_mode, nearest_mode, axes=axes), n_inputs=4)


@converter("Upsample", versions=(7, 9))
def convert_upsample(ctx: NodeContext) -> Converted:
    """Convert Upsample (scales attribute at opset 7, input at 9; asymmetric coordinates)."""
    mode = _mode(ctx)
    if ctx.since_version == 7:
        ctx.check_attributes({"mode", "scales"})
        scales = ctx.attr("scales")
        if scales is None:
            raise ctx.fail("attribute 'scales' is required")
        module = LegacyResizeOp(mode, "asymmetric", LEGACY, scales=[float(s) for s in scales])
        return bind(ctx, module, n_inputs=1)
    ctx.check_attributes({"mode"})
    return bind(ctx, LegacyResizeOp(mode, "asymmetric", LEGACY), n_inputs=2)

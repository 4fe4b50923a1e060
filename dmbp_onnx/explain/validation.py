"""Twin vs onnxruntime on each batch before it is explained."""

from __future__ import annotations

import torch

from dmbp_onnx.errors import MismatchError


def _validate(twin, x: torch.Tensor, device: torch.device, force: bool) -> dict:
    """Twin vs onnxruntime on the actual batch; refuse on mismatch unless ``force``."""
    from dmbp_onnx.validate import validate

    report = validate(twin, inputs=[x.numpy()], device=device.type)
    if not report.ok and not force:
        raise MismatchError(
            f"the twin disagrees with onnxruntime on this input (max abs {report.max_abs:.3g}, "
            f"rtol {report.rtol}, atol {report.atol}); first diverging: {report.first_divergence}. "
            "Run `dmbp-onnx validate` for details, or --force to explain anyway."
        )
    return report.to_dict()

"""What each image is explained for: targets, their labels, and class probabilities."""

from __future__ import annotations

from typing import Sequence

import torch

from dmbp_onnx.errors import InputError


def parse_target(target: str, class_names: Sequence[str] | None) -> int | None:
    """``--target`` as a class (or map channel) index; ``None`` for ``auto``.

    Raises
    ------
    InputError
        A name the model does not define.
    """
    if target == "auto":
        return None
    if target.lstrip("-").isdigit():
        return int(target)
    if class_names and target in class_names:
        return list(class_names).index(target)
    known = f"; known classes: {', '.join(class_names)}" if class_names else "; the model names no classes"
    raise InputError(f"unknown target '{target}'{known}")


def request_targets(target: str, box, output: torch.Tensor, class_names) -> list:
    """One target per image: a class index, a :class:`BoxTarget` or a :class:`RegionTarget`.

    ``auto`` is the methods' default rule (:func:`~dmbp_onnx.methods.target.default_targets`):
    the predicted class, and for a map output the predicted class's region. A class index
    or name on a map output is that channel over the whole map (or ``box``, in output-map
    coordinates, which only applies to map outputs; with ``auto`` it is channel 0's box).
    """
    from dmbp_onnx.methods import BoxTarget
    from dmbp_onnx.methods.target import default_targets

    index = parse_target(target, class_names)
    n = output.shape[0]
    if output.dim() > 2:
        if index is None and box is None:
            return default_targets(output)
        return [BoxTarget(0 if index is None else index, None if box is None else tuple(box))] * n
    if box is not None:
        raise InputError(f"--box applies only to models whose output is a map; this output has shape "
                         f"{tuple(output.shape)}")
    if index is None:
        return [int(k) for k in output.argmax(dim=1).tolist()]
    return [index] * n


def _probabilities(output: torch.Tensor, twin, output_kind: str) -> torch.Tensor | None:
    """Class probabilities when the output is a (N, classes) score, else ``None``."""
    if output.dim() != 2:
        return None
    if twin.output_activation is not None:
        op, axis = twin.output_activation
        return torch.softmax(output, dim=axis) if op == "Softmax" else torch.exp(torch.log_softmax(output, dim=axis))
    if output_kind == "probabilities":
        return output
    return torch.softmax(output, dim=1)


def _target_label(target, class_names) -> tuple[str | None, str]:
    """``(class or channel name or None, label for titles)``."""
    if isinstance(target, int):
        name = class_names[target] if class_names and target < len(class_names) else None
        return name, name or f"class {target}"
    box = getattr(target, "box", None)
    if hasattr(target, "mask"):
        where = f"predicted region ({target.pixels} of {target.mask.numel()} positions)"
    else:
        where = "whole map" if box is None else "box " + ",".join(str(v) for v in box)
    name = class_names[target.channel] if class_names and 0 <= target.channel < len(class_names) else None
    return name, f"channel {target.channel}" + (f" ({name})" if name else "") + f", {where}"

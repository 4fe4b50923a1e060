"""What an attribution explains: a class logit, or the summed score of a box of an output map.

Every target becomes a *selector*: a tensor shaped like the model's output whose
inner product with the output is the explained score (the ``grad_outputs`` of
the backward pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Sequence, Union

import torch

from dmbp_onnx.errors import InputError


@dataclass(frozen=True)
class BoxTarget:
    """The summed score of one channel of an output map inside a box.

    Parameters
    ----------
    channel : int
        Channel of the output map to explain (e.g. 0 = region, 1 = affinity for CRAFT).
    box : tuple of int, optional
        Half-open box in output coordinates, ``(y0, x0, y1, x1)`` for a 2-D map
        (``(x0, x1)`` for a 1-D map); the whole map when omitted.
    channel_axis : int, optional
        Axis of the output holding the channels. By default the smaller of axis 1
        and the last axis (axis 1 on a tie), which reads both ``(N, C, H, W)`` and
        ``(N, H, W, C)`` score maps.
    """

    channel: int
    box: tuple[int, ...] | None = None
    channel_axis: int | None = None


Target = Union[int, BoxTarget]


def _channel_axis(shape: Sequence[int], target: BoxTarget) -> int:
    rank = len(shape)
    if target.channel_axis is not None:
        axis = target.channel_axis % rank if -rank <= target.channel_axis < rank else None
        if axis is None or axis == 0:
            raise InputError(f"BoxTarget channel_axis {target.channel_axis} is invalid for output shape {tuple(shape)}")
        return axis
    return rank - 1 if shape[rank - 1] < shape[1] else 1


def _box_selector(shape: Sequence[int], target: BoxTarget) -> torch.Tensor:
    """Selector of one image (``shape`` without the batch axis prepended as 1)."""
    axis = _channel_axis(shape, target)
    if not 0 <= int(target.channel) < shape[axis]:
        raise InputError(
            f"BoxTarget channel {target.channel} is out of range for output shape {tuple(shape)} "
            f"(channel axis {axis} has {shape[axis]} channels)"
        )
    spatial = [a for a in range(1, len(shape)) if a != axis]
    index: list[slice | int] = [slice(None)] * len(shape)
    index[0] = 0
    index[axis] = int(target.channel)
    if target.box is not None:
        box = tuple(int(v) for v in target.box)
        if len(box) != 2 * len(spatial):
            raise InputError(
                f"BoxTarget box {target.box} needs {2 * len(spatial)} numbers for output shape {tuple(shape)}"
            )
        for k, a in enumerate(spatial):
            lo, hi = box[k], box[k + len(spatial)]
            if not 0 <= lo < hi <= shape[a]:
                raise InputError(
                    f"BoxTarget box {target.box} is empty or outside output shape {tuple(shape)}"
                )
            index[a] = slice(lo, hi)
    selector = torch.zeros([1] + list(shape[1:]))
    selector[tuple(index)] = 1.0
    return selector[0]


def _class_index(value, classes: int) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"target {value!r} is not a class index (int) or BoxTarget")
    if not 0 <= int(value) < classes:
        raise InputError(f"target class {int(value)} is out of range for {classes} classes")
    return int(value)


def per_image_targets(target, n: int) -> list | None:
    """``target`` as a list of ``n`` per-image targets, or None when one target applies to all.

    Raises
    ------
    InputError
        A sequence of the wrong length, or something that is neither a target nor a sequence.
    """
    if target is None or isinstance(target, (BoxTarget, Integral)):
        return None
    if isinstance(target, (str, bytes)):
        raise InputError(f"target {target!r} is not a class index (int) or BoxTarget")
    try:
        targets = list(target)
    except TypeError:
        raise InputError(f"target {target!r} is not a class index (int), a BoxTarget or a sequence of them") from None
    if len(targets) != n:
        raise InputError(f"{len(targets)} targets given for a batch of {n} images")
    return targets


def resolve_targets(
    output: torch.Tensor, target: Target | Sequence[Target] | None
) -> tuple[list[Target], torch.Tensor]:
    """Turn ``target`` into one target per image and a selector shaped like ``output``.

    Parameters
    ----------
    output : torch.Tensor
        The model's output for the batch, ``(N, classes)`` or an output map.
    target : int, BoxTarget, sequence of them, or None
        None explains the predicted class (classification outputs only); a single
        value applies to every image; a sequence gives one per image.

    Returns
    -------
    targets : list
        One int or BoxTarget per image.
    selector : torch.Tensor
        Same shape, dtype and device as ``output``; ``(output * selector)`` summed
        per image is the explained score.

    Raises
    ------
    InputError
        Wrong count, out-of-range class or box, or a target kind that does not fit the output.
    """
    n = output.shape[0]
    shape = tuple(output.shape)
    if target is None:
        if output.dim() != 2:
            raise InputError(
                f"output has shape {shape}: give a target (a BoxTarget(channel, box) for an output map)"
            )
        targets: list[Target] = [int(k) for k in output.detach().argmax(1).tolist()]
    else:
        targets = per_image_targets(target, n) or [target] * n
    selector = torch.zeros(shape, dtype=output.dtype)
    resolved: list[Target] = []
    for k, t in enumerate(targets):
        if isinstance(t, BoxTarget):
            if output.dim() < 3:
                raise InputError(f"BoxTarget needs an output map; the output has shape {shape}")
            selector[k] = _box_selector((1,) + shape[1:], t)
            resolved.append(t)
        else:
            if output.dim() != 2:
                raise InputError(
                    f"class target {t!r} needs a (N, classes) output; the output has shape {shape}: "
                    "use BoxTarget(channel, box)"
                )
            cls = _class_index(t, shape[1])
            selector[k, cls] = 1.0
            resolved.append(cls)
    return resolved, selector.to(output.device)

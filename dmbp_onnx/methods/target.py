"""What an attribution explains: a class logit, or the summed score of a box or region of an output map.

Every target becomes a *selector*: a tensor shaped like the model's output whose
inner product with the output is the explained score (the ``grad_outputs`` of
the backward pass).

The default target (no target given) is one rule, :func:`default_targets`, used by the
methods, ``explain`` and ``audit``: the predicted class of a ``(N, classes)`` output, and
for an output map (segmentation head, score map) the predicted class's region
(:data:`DENSE_RULE`).
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


@dataclass(frozen=True, eq=False)
class RegionTarget:
    """The summed score of one channel of an output map over a region (a boolean mask).

    Parameters
    ----------
    channel : int
        Channel (class) of the output map.
    mask : torch.Tensor
        Boolean, the output's shape without the batch and channel axes.
    channel_axis : int, optional
        Axis of the output holding the channels (default as for :class:`BoxTarget`).
    """

    channel: int
    mask: torch.Tensor
    channel_axis: int | None = None

    @property
    def pixels(self) -> int:
        """Number of output positions in the region."""
        return int(self.mask.sum())

    def to_dict(self) -> dict:
        """A JSON-ready summary (``report.json``): the channel and the region's size."""
        return {"channel": int(self.channel), "region": "predicted class", "pixels": self.pixels,
                "of": int(self.mask.numel())}

    def __repr__(self) -> str:
        return f"RegionTarget(channel={self.channel}, pixels={self.pixels}/{self.mask.numel()})"


Target = Union[int, BoxTarget, RegionTarget]

CLASS_RULE = "predicted class: the argmax of the (N, classes) output"
"""The default target of a class-score output."""

DENSE_RULE = (
    "predicted class region: the argmax channel at the most confident position of the map "
    "(largest softmax over channels), over the positions where that channel is the argmax"
)
"""The default target of an output map; with one channel, that channel over the whole map."""


def _channel_axis(shape: Sequence[int], target: BoxTarget) -> int:
    rank = len(shape)
    if target.channel_axis is not None:
        axis = target.channel_axis % rank if -rank <= target.channel_axis < rank else None
        if axis is None or axis == 0:
            raise InputError(f"BoxTarget channel_axis {target.channel_axis} is invalid for output shape {tuple(shape)}")
        return axis
    return rank - 1 if shape[rank - 1] < shape[1] else 1


def target_rule(output: torch.Tensor) -> str:
    """The name of the default-target rule that applies to ``output`` (for reports)."""
    return CLASS_RULE if output.dim() == 2 else DENSE_RULE


def default_targets(output: torch.Tensor) -> list[Target]:
    """One default target per image (see :data:`CLASS_RULE` and :data:`DENSE_RULE`).

    Raises
    ------
    InputError
        An output of rank below 2 (no class or channel axis).
    """
    shape = tuple(output.shape)
    if output.dim() < 2:
        raise InputError(f"output has shape {shape}: it has no class or channel axis to choose a target from")
    scores = output.detach().float().cpu()
    if output.dim() == 2:
        return [int(k) for k in scores.argmax(1).tolist()]
    axis = _channel_axis(shape, BoxTarget(0))
    confidence = torch.softmax(scores, dim=axis)
    best, winner = confidence.max(dim=axis)
    targets: list[Target] = []
    for k in range(shape[0]):
        channel = int(winner[k].flatten()[int(best[k].flatten().argmax())])
        targets.append(RegionTarget(channel, winner[k] == channel, axis))
    return targets


def _region_selector(shape: Sequence[int], target: RegionTarget) -> torch.Tensor:
    """Selector of one image for a :class:`RegionTarget` (``shape`` without the batch axis)."""
    axis = _channel_axis((1, *shape), BoxTarget(target.channel, None, target.channel_axis))
    spatial = tuple(d for a, d in enumerate(shape) if a != axis - 1)
    mask = target.mask
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != spatial:
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"RegionTarget mask has shape {got}; the output map needs {spatial}")
    if not 0 <= int(target.channel) < shape[axis - 1]:
        raise InputError(f"RegionTarget channel {target.channel} is out of range for output shape "
                         f"{(None, *shape)} (channel axis {axis} has {shape[axis - 1]} channels)")
    selector = torch.zeros(shape)
    selector.select(axis - 1, int(target.channel)).copy_(mask.to(torch.float32))
    return selector


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
    if target is None or isinstance(target, (BoxTarget, RegionTarget, Integral)):
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
    target : int, BoxTarget, RegionTarget, sequence of them, or None
        None applies :func:`default_targets` (the predicted class, or for an output map the
        predicted class's region); a single value applies to every image; a sequence gives
        one per image.

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
        targets: list[Target] = default_targets(output)
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
        elif isinstance(t, RegionTarget):
            if output.dim() < 3:
                raise InputError(f"RegionTarget needs an output map; the output has shape {shape}")
            selector[k] = _region_selector(shape[1:], t)
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

"""The one contract every attribution method shares: ``Method(twin, **options).attribute(x, target)``.

Input checking, target resolution, device placement and the result type live
here, once, for every method.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from dmbp_onnx.device import resolve_device
from dmbp_onnx.errors import InputError, UnsupportedModelError
from dmbp_onnx.methods.display import RECIPES, authors_display, clip_display
from dmbp_onnx.methods.target import Target, per_image_targets, resolve_targets


@dataclass
class Attribution:
    """The result of one :meth:`Method.attribute` call (tensors on CPU).

    Attributes
    ----------
    method : str
        CLI name of the method ("dmbp", "gradient", ...).
    signed : torch.Tensor
        Raw signed attribution, same shape and layout as the input batch.
    positive, negative : torch.Tensor
        Input-shaped evidence for (A+, mostly >= 0) and against (A-, mostly <= 0)
        the target. For the baselines ``positive = relu(signed)`` and
        ``negative = -relu(-signed)``.
    target : list
        Per image: the explained class index, or a :class:`BoxTarget`.
    score : torch.Tensor
        ``(N,)`` the explained target score (a logit when a softmax was split off).
    explains : str
        What ``score`` is, e.g. ``"logits (terminal Softmax split off)"`` or ``"output"``.
    extras : dict
        Method-specific results (see each method). Tensors hold one row per image on axis 0,
        except the per-iteration records named in :data:`PER_ITERATION_EXTRAS` (iterations
        first, images last); nested dicts follow the same rule.
    channel_axis : int or None
        Channel axis of the input layout (None: no channel axis to sum over).
    """

    method: str
    signed: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    target: list
    score: torch.Tensor
    explains: str
    extras: dict = field(default_factory=dict)
    channel_axis: int | None = 1

    @classmethod
    def from_signed(cls, method: str, signed: torch.Tensor, **fields: Any) -> "Attribution":
        """A baseline's result: positive and negative parts are the two signs of ``signed``."""
        signed = signed.detach().cpu()
        return cls(method, signed, torch.relu(signed), -torch.relu(-signed), **fields)

    @classmethod
    def concat(cls, parts: Sequence["Attribution"], keep: int) -> "Attribution":
        """The first ``keep`` images of ``parts`` (results of one method on consecutive chunks).

        Settings in ``extras`` (anything but a tensor with an image axis) are taken from the first part.
        """
        first = parts[0]
        return cls(
            method=first.method,
            signed=torch.cat([p.signed for p in parts])[:keep],
            positive=torch.cat([p.positive for p in parts])[:keep],
            negative=torch.cat([p.negative for p in parts])[:keep],
            target=[t for p in parts for t in p.target][:keep],
            score=torch.cat([p.score for p in parts])[:keep],
            explains=first.explains,
            extras={k: _concat_extra(k, [p.extras[k] for p in parts], keep) for k in first.extras},
            channel_axis=first.channel_axis,
        )

    def _part(self, which: str) -> torch.Tensor:
        parts = {"signed": self.signed, "positive": self.positive, "negative": self.negative}
        if which not in parts:
            raise InputError(f"unknown map {which!r}; choose one of {sorted(parts)}")
        return parts[which]

    def pixel_map(self, which: str = "signed") -> np.ndarray:
        """``(N, *spatial)``: the chosen map summed over the input channel axis."""
        part = self._part(which)
        if self.channel_axis is not None:
            part = part.sum(self.channel_axis)
        return part.numpy()

    def display(self, recipe: str = "clip") -> np.ndarray:
        """``(N, *spatial)`` map in [-1, 1] for display (red = evidence for, blue = against).

        Parameters
        ----------
        recipe : {"clip", "authors"}
            "clip" (default): ``relu(P) - relu(Q)`` scaled by the 98th percentile of their
            pooled values and clipped to [-1, 1] (see :func:`~dmbp_onnx.methods.display.clip_display`),
            with P the channel mean of A+ and Q minus the channel mean of A-.
            "authors": the DMBP authors' recipe (percentile clip, min shift), which tints
            the background when P has wrong-sign pixels (docs/method.md §5).
        """
        if recipe not in RECIPES:
            raise InputError(f"unknown display recipe {recipe!r}; choose one of {list(RECIPES)}")
        p, q = self.positive, -self.negative
        if self.channel_axis is not None:
            p, q = p.mean(self.channel_axis), q.mean(self.channel_axis)
        fn = clip_display if recipe == "clip" else authors_display
        return fn(p.double().numpy(), q.double().numpy()).astype(np.float32)


PER_ITERATION_EXTRAS = frozenset({"loss_history"})
"""``extras`` keys whose tensors are ``(iterations, images)``: their image axis is the last."""


def _concat_extra(key: str, values: list, keep: int) -> Any:
    """One ``extras`` entry of consecutive chunks, cut to ``keep`` images (see :class:`Attribution`)."""
    first = values[0]
    if isinstance(first, dict):
        return {k: _concat_extra(k, [v[k] for v in values], keep) for k in first}
    if isinstance(first, torch.Tensor) and first.dim() > 0:
        if key in PER_ITERATION_EXTRAS:
            return side_by_side(values).narrow(1, 0, keep)
        return torch.cat(values).narrow(0, 0, keep)
    return first


def side_by_side(histories: list[torch.Tensor]) -> torch.Tensor:
    """``(iterations, N)``: per-iteration tensors of consecutive chunks side by side; a chunk that
    ran fewer iterations (an early stop) is padded with NaN after its last one."""
    steps = max(h.shape[0] for h in histories)
    padded = [torch.cat([h, h.new_full((steps - h.shape[0], *h.shape[1:]), float("nan"))]) for h in histories]
    return torch.cat(padded, dim=1)


def pad_batch(x: torch.Tensor, batch: int) -> torch.Tensor:
    """``x`` with copies of its last image appended up to a multiple of ``batch`` images.

    Images are independent in every method, so a copy changes nothing for the others and
    its results are simply dropped.
    """
    missing = -x.shape[0] % batch
    return torch.cat([x, x[-1:].expand(missing, *x.shape[1:])]) if missing else x


def static_batch(twin) -> int | None:
    """The batch size the model's first input declares, or None when the batch axis is dynamic.

    Exporters bake a fixed batch into constants (Reshape targets, Resize sizes), so a
    model declaring batch 1 cannot run other batch sizes: :meth:`Method.attribute` runs
    such a model on chunks of exactly that batch (:func:`pad_batch`).
    """
    shape = twin.inputs[0].shape
    if shape and isinstance(shape[0], int) and shape[0] > 0:
        return int(shape[0])
    return None


class Method:
    """Base of every attribution method.

    Parameters
    ----------
    twin : Twin
        The rebuilt model (single input).
    device : str or torch.device
        Where to compute; "auto" = CUDA when available. The twin itself is not moved:
        a copy of its module is placed on the device when it lives elsewhere.

    Notes
    -----
    Subclasses implement :meth:`_attribute` on a validated CPU float32 batch; for a model
    that declares a fixed batch, that batch is always exactly the declared size.
    """

    name: str = ""

    def __init__(self, twin, device: str | torch.device = "auto") -> None:
        if len(twin.inputs) != 1:
            raise UnsupportedModelError(
                f"attribution needs a single-input model; this one has {len(twin.inputs)} inputs "
                f"({', '.join(s.name for s in twin.inputs)})"
            )
        self.twin = twin
        self.device = resolve_device(device)
        self._module: nn.Module | None = None
        #: The method's settings, for reports (subclasses add theirs).
        self.options: dict[str, Any] = {"device": str(self.device)}

    @property
    def module(self) -> nn.Module:
        """The twin's module on :attr:`device` (the twin's own module when already there)."""
        if self._module is None:
            if self.twin.device == self.device:
                self._module = self.twin.module
            else:
                self._module = copy.deepcopy(self.twin.module).to(self.device)
        return self._module

    @property
    def explains(self) -> str:
        """What the explained score is."""
        if self.twin.output_activation is not None:
            return f"logits (terminal {self.twin.output_activation[0]} split off)"
        return "output"

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The module's first output for ``x``."""
        out = self.module(x)
        return out[0] if isinstance(out, tuple) else out

    def validate_input(self, x) -> torch.Tensor:
        """Check ``x`` against the declared input and return it as a CPU float32 tensor.

        Dimension 0 is the batch, of any size (a model's fixed batch is handled by
        :meth:`attribute`); other dimensions must equal the declared ones unless those are dynamic.

        Raises
        ------
        InputError
            Not a float array, wrong rank or shape (naming the input, the declared and the
            given shape), empty batch, NaN or Inf values.
        """
        spec = self.twin.inputs[0]
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor):
            raise InputError(f"input must be a tensor or numpy array, got {type(x).__name__}")
        if not x.is_floating_point():
            raise InputError(f"input must be floating point, got {x.dtype}")
        declared = list(spec.shape or ())
        expected = "(" + ", ".join(str(d) for d in declared) + ")"
        if x.dim() != len(declared):
            raise InputError(
                f"input '{spec.name}' has shape {tuple(x.shape)}; the model declares {expected} "
                f"({len(declared)} dims, batch first)"
            )
        for axis, (got, want) in enumerate(zip(x.shape, declared)):
            if axis > 0 and isinstance(want, int) and want > 0 and got != want:
                raise InputError(
                    f"input '{spec.name}' has shape {tuple(x.shape)}; the model declares {expected} "
                    f"(axis {axis} must be {want})"
                )
        if x.shape[0] == 0:
            raise InputError(f"input '{spec.name}' is an empty batch {tuple(x.shape)}")
        x = x.detach().to("cpu", torch.float32)
        if not torch.isfinite(x).all():
            raise InputError(f"input '{spec.name}' of shape {tuple(x.shape)} contains NaN or Inf")
        if any(not (isinstance(d, int) and d > 0) for d in declared[1:]):
            self.twin.check_runs(x)  # a dynamic size the graph cannot take is a typed error, not torch's
        return x.contiguous()

    def gradient(
        self, x: torch.Tensor, target: Target | Sequence[Target] | None
    ) -> tuple[torch.Tensor, torch.Tensor, list[Target], torch.Tensor]:
        """Plain input gradient of the selected score.

        Returns
        -------
        grad, score, targets, selector
            ``grad`` shaped like ``x`` and ``score`` ``(N,)`` on :attr:`device`.
        """
        x = x.to(self.device).requires_grad_(True)
        out = self.run(x)
        targets, selector = resolve_targets(out, target)
        (grad,) = torch.autograd.grad(out, x, grad_outputs=selector)
        return grad, (out.detach() * selector).flatten(1).sum(1), targets, selector

    def attribute(self, x, target: Target | Sequence[Target] | None = None) -> Attribution:
        """Explain ``target`` for every image of the batch ``x``.

        A model that declares a fixed batch ``B`` explains any number of images: the batch is
        padded with copies of its last image to a multiple of ``B``, explained ``B`` images
        at a time, and the copies' results are dropped.

        Parameters
        ----------
        x : torch.Tensor or np.ndarray
            A float batch in the model's own layout and declared input shape (any batch size).
        target : int, BoxTarget, sequence of them, or None
            None = the predicted class of each image; one value for all images, or one per image.

        Raises
        ------
        InputError
            Invalid input or target.
        """
        x = self.validate_input(x)
        fixed = static_batch(self.twin)
        n = x.shape[0]
        if fixed is None or n == fixed:
            return self._attribute(x, target)
        listed = per_image_targets(target, n)
        padded = pad_batch(x, fixed)
        if listed is not None:
            listed += listed[-1:] * (padded.shape[0] - n)
        parts = [
            self._attribute(padded[start : start + fixed], target if listed is None else listed[start : start + fixed])
            for start in range(0, padded.shape[0], fixed)
        ]
        return Attribution.concat(parts, keep=n)

    def _attribute(self, x: torch.Tensor, target) -> Attribution:
        raise NotImplementedError

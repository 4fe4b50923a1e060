"""Layer-wise Relevance Propagation with zennit's composites, on the twin's canonical form.

zennit (an optional dependency) hooks ``nn.Linear`` / ``nn.ConvNd`` modules, so the
method runs on :func:`~dmbp_onnx.twin.canonical.canonicalize`'s copy of the twin, where
biases and foldable BatchNorms sit inside those modules.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from numbers import Real

import torch
from torch import nn

from dmbp_onnx.errors import DmbpOnnxError, InputError
from dmbp_onnx.methods.base import Attribution, Method
from dmbp_onnx.methods.target import resolve_targets
from dmbp_onnx.twin.canonical import CanonicalModule, canonicalize

#: ``composite`` option -> zennit composite class name ("epsilon_gamma": built here from zennit's rules).
COMPOSITES = {"epsilon_gamma_box": "EpsilonGammaBox", "epsilon_plus_flat": "EpsilonPlusFlat", "epsilon_gamma": None}

INSTALL_HINT = (
    "pip install --no-deps zennit (zennit declares torchvision, which would pull another torch build; "
    "it needs only torch, numpy and Pillow, which dmbp-onnx already installs)"
)


class MissingDependencyError(DmbpOnnxError):
    """An optional package a method needs is not installed."""


def _torchvision_stand_ins() -> dict[str, types.ModuleType]:
    """Modules standing in for the part of torchvision zennit imports (two ResNet block classes)."""
    resnet = types.ModuleType("torchvision.models.resnet")
    resnet.Bottleneck = type("Bottleneck", (nn.Module,), {})
    resnet.BasicBlock = type("BasicBlock", (nn.Module,), {})
    models = types.ModuleType("torchvision.models")
    models.resnet = resnet
    vision = types.ModuleType("torchvision")
    vision.models = models
    return {"torchvision": vision, "torchvision.models": models, "torchvision.models.resnet": resnet}


def import_zennit() -> types.ModuleType:
    """Import and return zennit.

    zennit imports torchvision's ResNet blocks for its torchvision canonizers, which this
    project does not use. Where torchvision is missing or does not load next to the
    installed torch, empty stand-in classes sit in ``sys.modules`` while zennit is
    imported and are removed again afterwards.

    Raises
    ------
    MissingDependencyError
        zennit is not installed (the message says how to install it).
    """
    if "zennit" in sys.modules:
        return sys.modules["zennit"]
    if importlib.util.find_spec("zennit") is None:
        raise MissingDependencyError(f"LRP needs the zennit package, which is not installed: {INSTALL_HINT}")
    try:
        import torchvision  # noqa: F401

        stand_ins = {}
    except Exception:  # noqa: BLE001 - missing or broken torchvision
        stand_ins = {name: mod for name, mod in _torchvision_stand_ins().items() if name not in sys.modules}
    sys.modules.update(stand_ins)
    try:
        import zennit
    finally:
        for name in stand_ins:
            sys.modules.pop(name, None)
    return zennit


class _FirstLayerInput(Exception):
    """Stops a forward pass at the first conv and carries that conv's input."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__("first layer reached")
        self.value = value


class LRP(Method):
    """Layer-wise Relevance Propagation (Bach et al. 2015) with a zennit composite.

    Parameters
    ----------
    twin : Twin
        The model.
    composite : {"epsilon_gamma_box", "epsilon_plus_flat", "epsilon_gamma"}
        zennit's ``EpsilonGammaBox`` (default: z-box rule on the first conv, gamma = 0.25 on
        the other convs, epsilon on dense layers; Montavon et al. 2019), ``EpsilonPlusFlat``
        (flat rule on the first layer, z+ on the other convs, epsilon on dense layers), or
        "epsilon_gamma": gamma = 0.25 on every conv including the first, epsilon on dense layers
        (zennit's rules in a ``LayerMapComposite``; what DMBP's ``rule="lrp-gamma"`` equals with
        its masks at 1 on inputs without negative values).
    low, high : float, optional
        ``epsilon_gamma_box`` only: the smallest and largest possible input value, in the
        model's input space (after preprocessing). Default: each image's own per-channel
        minimum and maximum (per image, so a batch gives the same maps as single images).
    device : str
        "auto" = CUDA when available.

    Notes
    -----
    Runs on the canonical form of the twin (:func:`~dmbp_onnx.twin.canonical.canonicalize`,
    built on the first batch): biases and BatchNorms folded into their Linear/Conv
    modules, forward unchanged up to rounding. The relevance starts as the explained output
    value(s) (the target logit, or each output value in a :class:`BoxTarget`'s box), so on a
    bias-free ReLU network the map sums to the score. The signed map is the relevance at the
    input, in the input's layout; ``positive`` / ``negative`` are its two signs. The z-box
    bounds are pushed through whatever precedes the first conv (a layout transpose, a
    normalisation) to that conv's input. ``extras["kept"]`` lists the affine nodes no layer
    absorbs exactly (relevance passes them as a gradient, scaled by their factor).

    Raises
    ------
    MissingDependencyError
        zennit is not installed.
    """

    name = "lrp"

    def __init__(
        self,
        twin,
        composite: str = "epsilon_gamma_box",
        low: float | None = None,
        high: float | None = None,
        device: str = "auto",
    ) -> None:
        super().__init__(twin, device)
        if composite not in COMPOSITES:
            raise InputError(f"invalid LRP option composite={composite!r}; choose one of {sorted(COMPOSITES)}")
        given = [v for v in (low, high) if v is not None]
        if len(given) == 1 or not all(isinstance(v, Real) for v in given) or (given and not low < high):
            raise InputError(f"invalid LRP options low={low!r}, high={high!r}: give both, with low < high")
        self.zennit = import_zennit()
        self.composite = composite
        self.low, self.high = (None, None) if low is None else (float(low), float(high))
        self.canonical: CanonicalModule | None = None
        self.options.update(composite=composite, low=self.low, high=self.high)

    @property
    def module(self) -> nn.Module:
        """The canonical copy of the twin's module on :attr:`device` (built by the first batch)."""
        if self.canonical is None:
            raise RuntimeError("the canonical module is built by the first attribute() call")
        return self.canonical.module

    def _bounds(self, x: torch.Tensor) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        """z-box bounds at the first conv's input, for the batch ``x`` (on :attr:`device`)."""
        first = next((m for m in self.module.modules() if isinstance(m, self.zennit.types.Convolution)), None)
        if first is None:
            return 0.0, 0.0  # no conv: EpsilonGammaBox applies no z-box rule
        if self.low is not None:
            low, high = torch.full_like(x, self.low), torch.full_like(x, self.high)
        else:
            axis = self.twin.channel_axis
            dims = [d for d in range(1, x.dim()) if axis is None or d != axis % x.dim()]
            low, high = x.amin(dims, keepdim=True).expand_as(x), x.amax(dims, keepdim=True).expand_as(x)

        def stop(module, inputs):
            raise _FirstLayerInput(inputs[0])

        handle = first.register_forward_pre_hook(stop)
        reached = []
        try:
            for bound in (low, high):
                try:
                    with torch.no_grad():
                        self.module(bound.contiguous())
                except _FirstLayerInput as hit:
                    reached.append(hit.value)
        finally:
            handle.remove()
        return torch.minimum(*reached), torch.maximum(*reached)

    def _zennit_composite(self, x: torch.Tensor):
        z = self.zennit
        if self.composite == "epsilon_gamma":
            # EpsilonGammaBox's layer map without its first_map (the z-box rule on the first conv)
            return z.composites.LayerMapComposite(layer_map=z.composites.layer_map_base(1e-6) + [
                (z.types.Convolution, z.rules.Gamma(gamma=0.25, stabilizer=1e-6)),
                (nn.Linear, z.rules.Epsilon(epsilon=1e-6)),
            ])  # fmt: skip
        cls = getattr(z.composites, COMPOSITES[self.composite])
        if self.composite == "epsilon_plus_flat":
            return cls()
        low, high = self._bounds(x)
        return cls(low=low, high=high)

    def _attribute(self, x: torch.Tensor, target) -> Attribution:
        xd = x.to(self.device)
        if self.canonical is None:
            self.canonical = canonicalize(self.twin, xd.to(self.twin.device))
            self.canonical.module.to(self.device)
        composite = self._zennit_composite(xd)
        xd = xd.clone().requires_grad_(True)
        with composite.context(self.module) as hooked:
            out = hooked(xd)
            out = out[0] if isinstance(out, tuple) else out
            targets, selector = resolve_targets(out, target)
            start = out.detach() * selector  # the explained output values are the initial relevance
            (relevance,) = torch.autograd.grad(out, xd, grad_outputs=start)
        score = start.flatten(1).sum(1)
        return Attribution.from_signed(
            self.name, relevance, target=targets, score=score.cpu(), explains=self.explains,
            extras={"composite": self.composite, "kept": list(self.canonical.kept)},
            channel_axis=self.twin.channel_axis,
        )  # fmt: skip

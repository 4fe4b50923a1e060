"""The mask-site rule: where the masks act and the per-site signals are read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import torch
from torch import fx, nn

from dmbp_onnx.methods.masked.regions import RegionGrid
from dmbp_onnx.methods.masked.rule import Contribution, Rule
from dmbp_onnx.twin.masks import MaskSite

if TYPE_CHECKING:
    from dmbp_onnx.methods.masked.mapping import MaskedMapping


class SiteRule(Rule):
    """A mask site: the backward signal and the adjoint activation are scaled by its mask.

    Parameters
    ----------
    name : str
        The site's submodule name (the key of its mask).
    site : MaskSite
        The site (filters and their axis).
    """

    modules = (MaskSite,)
    needs_tensor = False

    def __init__(self, name: str, site: MaskSite) -> None:
        self.name, self.site = name, site

    @classmethod
    def record(
        cls, mapping: MaskedMapping, node: fx.Node, sub: nn.Module, h: Optional[torch.Tensor], args: tuple
    ) -> tuple[Rule, Any]:
        """Register the site with the mapping (and its region grid, with ``regions`` > 1 on a 4-D
        activation); the forward is the identity."""
        mapping.sites[node.target] = sub
        value = h if h is not None else args[0]
        if mapping.regions > 1 and isinstance(value, torch.Tensor) and value.dim() == 4:
            mapping.grids[node.target] = RegionGrid(value.shape, sub.channel_axis, mapping.regions)
        return cls(node.target, sub), value

    def transpose(
        self, mapping: MaskedMapping, node: fx.Node, g: Any, owned: bool, masks: dict[str, torch.Tensor]
    ) -> list[Contribution]:
        """Keep ``g`` as the site's signal; pass on ``g`` times the mask (``g`` when unmasked)."""
        src = node.args[0] if node.args else None
        mapping.signals[self.name] = g
        mask = masks.get(self.name)
        if mask is None:
            return [(src, g, False)]
        if owned:  # the signal may be consumed in place by mask_gradients (never the selector itself)
            mapping.owned_signals.add(self.name)
        return [(src, g * mapping.site_mask(self.name, mask, g), True)]

    def tangent(
        self,
        mapping: MaskedMapping,
        node: fx.Node,
        tangents: dict[fx.Node, Any],
        fresh: set[fx.Node],
        masks: dict[str, torch.Tensor],
        at_site,
    ) -> tuple[Any, bool]:
        """Report the arriving activation to ``at_site``, then apply the mask (in place when fresh)."""
        t = tangents[node.args[0]]
        at_site(node.target, t)
        mask = masks.get(node.target)
        if mask is None:
            return t, False
        mask = mapping.site_mask(node.target, mask, t)
        return (t.mul_(mask) if node.args[0] in fresh else t * mask), True

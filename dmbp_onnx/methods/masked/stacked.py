"""Several masked mappings of consecutive parts of a batch, presented as one."""

from __future__ import annotations

from typing import Sequence

import torch

from dmbp_onnx.methods.masked.mapping import MaskedMapping


class StackedMapping:
    """Mappings of consecutive parts of a batch, presented as one mapping of the whole batch.

    DMBP uses it for a model that declares a fixed batch: the positive and negative
    mask sets cannot then share one batch of twice the size, so each set has a mapping
    of its own at the declared batch (a :meth:`MaskedMapping.fork` of the other's).
    Masks and tangents are split along the batch axis, results concatenated.

    Parameters
    ----------
    parts : sequence of MaskedMapping
        The mappings, in batch order, with the same mask sites.

    Attributes
    ----------
    x, output, grad_outputs : torch.Tensor
        The parts' inputs, outputs and selectors, concatenated.
    site_names : list of str
        Mask sites in graph order.
    channels : dict of str to int
        Filters per site.
    """

    def __init__(self, parts: Sequence[MaskedMapping]) -> None:
        self.parts = list(parts)
        self.sizes = [p.x.shape[0] for p in self.parts]
        self.x = torch.cat([p.x for p in self.parts])
        self.output = torch.cat([p.output for p in self.parts])
        self.grad_outputs = torch.cat([p.grad_outputs for p in self.parts])
        self.site_names, self.channels = self.parts[0].site_names, self.parts[0].channels

    def __call__(self, masks: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """W_m of the whole batch for ``masks`` (site name -> ``(batch, channels)``)."""
        return torch.cat([p(m) for p, m in zip(self.parts, self._split(masks))])

    def mask_gradients(self, tangent: torch.Tensor, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``d <W_m, tangent> / d m`` per site, ``(batch, channels)``, after a call with ``masks``."""
        found = [
            p.mask_gradients(t, m) for p, t, m in zip(self.parts, tangent.split(self.sizes), self._split(masks))
        ]  # fmt: skip
        return {k: torch.cat([f[k] for f in found]) for k in found[0]}

    def _split(self, masks: dict[str, torch.Tensor] | None) -> list[dict[str, torch.Tensor] | None]:
        """Each part's masks."""
        if not masks:
            return [masks] * len(self.parts)
        pieces = {k: m.split(self.sizes) for k, m in masks.items()}
        return [{k: v[i] for k, v in pieces.items()} for i in range(len(self.parts))]

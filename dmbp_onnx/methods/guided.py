"""Guided Backpropagation (Springenberg et al. 2015): only positive gradients pass the rectifiers."""

from __future__ import annotations

import onnx_graphsurgeon as gs
import torch

from dmbp_onnx.methods.base import Attribution, Method
from dmbp_onnx.op_traits import op_traits


def rectifier_modules(twin) -> list[str]:
    """Submodule names of the twin's rectifier nodes, found by their ONNX op's ``rectifier`` trait
    (not module type): Relu, Clip, LeakyRelu, PRelu, and Max/Min with a constant operand
    (``Max(x, 0)``, ``Min(x, 6)``: how some exporters write ReLU / ReLU6)."""
    nodes = {node.name: node for node in twin.clean_graph.graph.nodes}
    names = []
    for sub, onnx_name in twin.node_names.items():
        node = nodes.get(onnx_name)
        if node is None:
            continue
        rectifier = op_traits(node.op, node.domain).rectifier
        if rectifier == "always" or (
            rectifier == "constant_operand" and any(isinstance(t, gs.Constant) for t in node.inputs)
        ):
            names.append(sub)
    return names


class GuidedBackprop(Method):
    """Guided Backpropagation: at every rectifier the backward gradient is clipped at zero.

    Rectifiers are the twin's Relu, Clip, LeakyRelu, PRelu nodes and Max/Min with a
    constant operand, whatever module type they were rebuilt as; at each one the
    gradient w.r.t. its input becomes ``relu(gradient)`` (for Relu: ``relu(g) * [x > 0]``,
    as in Captum). A known failure of the model-randomisation sanity check; kept as a baseline.
    """

    name = "guidedbp"

    def _attribute(self, x: torch.Tensor, target) -> Attribution:
        def clip(module, grad_input, grad_output):
            return tuple(torch.relu(g) if g is not None else None for g in grad_input)

        handles = [
            self.module.get_submodule(name).register_full_backward_hook(clip)
            for name in rectifier_modules(self.twin)
        ]
        try:
            grad, score, targets, _ = self.gradient(x, target)
        finally:
            for handle in handles:
                handle.remove()
        return Attribution.from_signed(
            self.name, grad, target=targets, score=score.cpu(), explains=self.explains,
            extras={"rectifiers": len(handles)}, channel_axis=self.twin.channel_axis,
        )  # fmt: skip

"""Build a :class:`torch.fx.GraphModule` from a cleaned onnx-graphsurgeon graph.

Every ONNX node becomes one submodule named after the node (sanitised to a
Python identifier); a :class:`~dmbp_onnx.twin.masks.MaskSite` follows every
conv filter bank and every hidden fully-connected layer.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs
import torch
from torch import fx, nn

from dmbp_onnx.errors import UnsupportedModelError, UnsupportedOpError
from dmbp_onnx.op_traits import op_traits
from dmbp_onnx.twin import ops as _ops  # noqa: F401  (registers every converter)
from dmbp_onnx.twin.masks import MaskSite, MaskSiteInfo
from dmbp_onnx.twin.registry import ConverterFn, NodeContext, resolve


class ConstantOutput(nn.Module):
    """Returns a constant tensor (a graph output known at build time)."""

    def __init__(self, value: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("value", torch.from_numpy(np.array(value, copy=True)))

    def forward(self) -> torch.Tensor:
        return self.value


@dataclass
class BuiltModule:
    """Result of :func:`build_module`.

    Attributes
    ----------
    module : torch.fx.GraphModule
        The twin's module.
    mask_sites : list of MaskSiteInfo
        The sites in graph order.
    node_names : dict of str to str
        Submodule name -> ONNX node name.
    tensor_nodes : dict of str to str
        ONNX tensor name -> name of the fx node computing it (for bisection).
    """

    module: fx.GraphModule
    mask_sites: list[MaskSiteInfo]
    node_names: dict[str, str]
    tensor_nodes: dict[str, str]


def _identifier(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", name) or "node"
    if base[0].isdigit():
        base = "n_" + base
    candidate, k = base, 1
    while candidate in taken or hasattr(fx.GraphModule, candidate):
        k += 1
        candidate = f"{base}_{k}"
    taken.add(candidate)
    return candidate


def _site_channels(node: gs.Node) -> tuple[int, int] | None:
    """``(channels, axis)`` gated after a linear layer node, or None if it has no constant weight."""
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    if not isinstance(weight, gs.Constant):
        return None
    shape = weight.shape
    if node.op == "Conv":
        return int(shape[0]), 1
    if node.op == "ConvTranspose":
        return int(shape[1]) * int(node.attrs.get("group", 1)), 1
    if node.op == "Gemm":
        return (int(shape[0]) if node.attrs.get("transB", 0) else int(shape[1])), 1
    if node.op == "MatMul" and len(shape) == 2:
        return int(shape[-1]), -1
    return None


def _hidden_linear_nodes(graph: gs.Graph) -> set[str]:
    """Names of Gemm/MatMul nodes with another linear layer downstream (hidden layers)."""
    downstream: dict[str, bool] = {}
    for node in reversed(graph.nodes):
        flag = False
        for out in node.outputs:
            for consumer in out.outputs:
                if op_traits(consumer.op, consumer.domain).linear_layer or downstream.get(consumer.name, False):
                    flag = True
        downstream[node.name] = flag
    return {n.name for n in graph.nodes if n.op in ("Gemm", "MatMul") and downstream[n.name]}


def _domain(node: gs.Node) -> str:
    return "" if node.domain in (None, "", "ai.onnx") else node.domain


def resolve_all(graph: gs.Graph, opsets: dict[str, int]) -> list[tuple[ConverterFn, int, int]]:
    """``(converter, since_version, opset)`` for every node, in graph order.

    Raises for the first node without a converter, naming every other such node too.
    """
    resolved: list[tuple[ConverterFn, int, int]] = []
    errors: list[UnsupportedOpError] = []
    for node in graph.nodes:
        domain = _domain(node)
        if domain not in opsets:
            errors.append(UnsupportedOpError(
                node.op, 0, node.name, f"domain '{domain}' is not imported by the model"))
            continue
        try:
            fn, since = resolve(node, opsets[domain], domain)
        except UnsupportedOpError as exc:
            errors.append(exc)
            continue
        resolved.append((fn, since, opsets[domain]))
    if errors:
        first = errors[0]
        if len(errors) > 1:
            others = ", ".join(f"'{e.node}' ({e.op})" for e in errors[1:8])
            more = f" and {len(errors) - 8} more" if len(errors) > 8 else ""
            first.detail += f"; also unsupported: {others}{more}"
            first.args = (f"unsupported {first.op} (opset {first.opset}) at node '{first.node}': {first.detail}",)
        raise first
    return resolved


def build_module(graph: gs.Graph, opsets: dict[str, int], mask_sites: bool = True) -> BuiltModule:
    """Rebuild ``graph`` as a GraphModule.

    Parameters
    ----------
    graph : onnx_graphsurgeon.Graph
        A cleaned graph (constants folded, topologically sortable). Node names must be unique.
    opsets : dict of str to int
        Opset version imported per domain ("" for ai.onnx).
    mask_sites : bool
        Insert a :class:`MaskSite` after every conv and hidden linear layer.

    Raises
    ------
    UnsupportedOpError
        For the first node whose op, revision or attribute has no exact converter.
    """
    graph.toposort()
    for index, node in enumerate(graph.nodes):
        if not node.name:
            node.name = f"{node.op}_{index}"
    converters = resolve_all(graph, opsets)
    hidden = _hidden_linear_nodes(graph) if mask_sites else set()

    root = nn.Module()
    fx_graph = fx.Graph()
    taken: set[str] = set()
    env: dict[str, fx.Node] = {}
    node_names: dict[str, str] = {}
    tensor_nodes: dict[str, str] = {}
    sites: list[MaskSiteInfo] = []

    for tensor in graph.inputs:
        env[tensor.name] = fx_graph.placeholder(_identifier(tensor.name, taken))
        tensor_nodes[tensor.name] = env[tensor.name].name

    graph_outputs = frozenset(t.name for t in graph.outputs)
    for node, (fn, since, opset) in zip(graph.nodes, converters):
        converted = fn(NodeContext(node=node, opset=opset, since_version=since, graph_outputs=graph_outputs))
        mod_name = _identifier(node.name, taken)
        root.add_module(mod_name, converted.module)
        node_names[mod_name] = node.name
        args = []
        for i in converted.inputs:
            tensor = node.inputs[i]
            if tensor.name not in env:
                raise UnsupportedModelError(
                    f"node '{node.name}' ({node.op}) reads '{tensor.name}', which no node computes"
                )
            args.append(env[tensor.name])
        call = fx_graph.call_module(mod_name, tuple(args))
        outputs = list(node.outputs)
        if len(outputs) == 1:
            results = [call]
        else:
            results = [fx_graph.call_function(operator.getitem, (call, k)) for k in range(len(outputs))]
        if mask_sites and (node.op in ("Conv", "ConvTranspose") or node.name in hidden):
            site = _site_channels(node)
            if site is not None:
                site_name = _identifier(f"{mod_name}__mask", taken)
                root.add_module(site_name, MaskSite(node.name, site[0], site[1]))
                results[0] = fx_graph.call_module(site_name, (results[0],))
                sites.append(MaskSiteInfo(site_name, node.name, node.op, site[0], site[1]))
        for tensor, value in zip(outputs, results):
            if tensor.name:
                env[tensor.name] = value
                tensor_nodes[tensor.name] = value.name

    returned = []
    for tensor in graph.outputs:
        if tensor.name in env:
            returned.append(env[tensor.name])
        elif isinstance(tensor, gs.Constant):
            const_name = _identifier(f"constant_{tensor.name}", taken)
            root.add_module(const_name, ConstantOutput(tensor.values))
            returned.append(fx_graph.call_module(const_name, ()))
        else:
            raise UnsupportedModelError(f"graph output '{tensor.name}' is not computed by any node")
    fx_graph.output(returned[0] if len(returned) == 1 else tuple(returned))
    module = fx.GraphModule(root, fx_graph, class_name="OnnxTwin")
    module.eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return BuiltModule(module, sites, node_names, tensor_nodes)

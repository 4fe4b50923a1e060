"""The :class:`Twin`: an ONNX model rebuilt as a PyTorch module, with its provenance."""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from torch import fx

from dmbp_onnx.errors import DmbpOnnxError, InputError, UnsupportedOpError
from dmbp_onnx.graph.load import load_model
from dmbp_onnx.graph.outputs import select_output
from dmbp_onnx.graph.passes import CleanGraph, clean
from dmbp_onnx.graph.specs import TensorSpec, tensor_spec
from dmbp_onnx.twin.build import build_module, resolve_all
from dmbp_onnx.twin.masks import MaskSiteInfo


class Twin:
    """An ONNX model rebuilt as a ``torch.fx.GraphModule``.

    Build one with :func:`dmbp_onnx.load`. Calling the twin runs it on tensors in
    the model's own layout and returns its (first) output; a terminal softmax
    that was split off is *not* applied (see :attr:`output_activation`).

    Attributes
    ----------
    module : torch.fx.GraphModule
        The rebuilt network; submodules are named after the ONNX nodes.
    model : onnx.ModelProto
        The checked original model (the onnxruntime oracle runs this).
    clean_graph : CleanGraph
        The cleaned graph the module was built from.
    inputs, outputs : list of TensorSpec
        The cleaned graph's inputs and outputs as declared (``dmbp_onnx.graph.specs``).
    mask_sites : list of MaskSiteInfo
        One entry per conv filter bank / hidden linear layer, in graph order.
    node_names : dict of str to str
        Submodule name -> ONNX node name.
    tensor_nodes : dict of str to str
        ONNX tensor name (of the cleaned graph) -> fx node name.
    """

    def __init__(self, model: onnx.ModelProto, clean_graph: CleanGraph) -> None:
        self.model = model
        self.clean_graph = clean_graph
        self.inputs: list[TensorSpec] = [tensor_spec(t) for t in clean_graph.graph.inputs]
        self.outputs: list[TensorSpec] = [tensor_spec(t) for t in clean_graph.graph.outputs]
        built = build_module(clean_graph.graph, clean_graph.opsets)
        self.module: fx.GraphModule = built.module
        self.mask_sites: list[MaskSiteInfo] = built.mask_sites
        self.node_names = built.node_names
        self.tensor_nodes = built.tensor_nodes

    @property
    def layout(self) -> str:
        """Layout of the first input ("NCHW", "NHWC", "NCW", "NWC" or "unknown")."""
        return self.clean_graph.layout

    @property
    def channel_axis(self) -> int | None:
        """Channel axis of the first input in the user's layout."""
        return self.clean_graph.channel_axis

    @property
    def output_activation(self) -> tuple[str, int] | None:
        """``(op, axis)`` of a terminal Softmax/LogSoftmax that was split off, else None."""
        return self.clean_graph.output_activation

    @property
    def passes_applied(self) -> list[str]:
        """Names of the rewrite passes that changed the graph."""
        return list(self.clean_graph.passes_applied)

    @property
    def device(self) -> torch.device:
        """Device of the twin's weights (CPU for a weightless twin)."""
        for tensor in list(self.module.parameters()) + list(self.module.buffers()):
            return tensor.device
        return torch.device("cpu")

    def to(self, device: str | torch.device) -> "Twin":
        """Move the module to ``device`` in place and return the twin."""
        self.module.to(device)
        return self

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Run the twin; returns the first output (logits when a softmax was split off)."""
        out = self.module(*inputs)
        return out[0] if isinstance(out, tuple) else out

    def check_runs(self, x: torch.Tensor) -> None:
        """Run the first image of ``x`` (as the declared batch) once; a size the graph cannot take is an error.

        Only needed when the input declares dynamic dimensions past the batch (a fully
        convolutional model given an image smaller than its kernels).

        Raises
        ------
        InputError
            Naming the input, its declared and the given shape, and the first line of the failure.
        """
        spec = self.inputs[0]
        batch = spec.shape[0] if spec.shape and isinstance(spec.shape[0], int) and spec.shape[0] > 0 else 1
        probe = x[:1].expand(batch, *x.shape[1:]).to(self.device)
        try:
            with torch.no_grad():
                self.module(probe)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"input '{spec.name}' has shape {tuple(x.shape)}; the model declares "
                             f"{list(spec.shape or ())} but cannot run this size: {reason}") from None

    def forward_all(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the twin and return every output, as the cleaned graph declares them."""
        out = self.module(*inputs)
        return out if isinstance(out, tuple) else (out,)

    def forward_declared(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every output as the ONNX file declares it (a split-off softmax re-applied)."""
        outs = list(self.forward_all(*inputs))
        if self.output_activation is not None:
            op, axis = self.output_activation
            fn = torch.softmax if op == "Softmax" else torch.log_softmax
            outs[0] = fn(outs[0], dim=axis)
        return tuple(outs)

    def __repr__(self) -> str:
        ins = ", ".join(f"{s.name}{list(s.shape or ())}" for s in self.inputs)
        return (
            f"Twin(inputs=[{ins}], layout={self.layout}, nodes={len(self.node_names)}, "
            f"mask_sites={len(self.mask_sites)}, output_activation={self.output_activation})"
        )


def load(
    source: str | Path | bytes | onnx.ModelProto, output: str | None = None, layout: str | None = None
) -> Twin:
    """Load an ONNX model and rebuild it as a :class:`Twin`.

    Parameters
    ----------
    source : str, Path, bytes or onnx.ModelProto
        Path of a ``.onnx`` file, its bytes, or an in-memory model. Files and bytes go through
        the hostile-file checks of :func:`dmbp_onnx.graph.load.load_model`; an in-memory
        ``ModelProto`` is trusted as given (serialize it to bytes to have it checked).
    output : str, optional
        Rebuild only the subgraph this declared output needs (:func:`~dmbp_onnx.graph.outputs.select_output`):
        the twin has that one output, which the methods explain, and ops on other outputs'
        paths are not converted. By default every output is kept and the methods explain the first.
    layout : str, optional
        Layout of the first input (``"NCHW"``, ``"NHWC"``, ...), overriding the graph's decision
        (:func:`~dmbp_onnx.graph.layout.decide_layout`).

    Raises
    ------
    ModelLoadError
        The file is unreadable, malformed or hostile.
    UnknownOutputError
        ``output`` is not a declared output (the message lists them).
    LayoutError
        ``layout`` does not fit the first input.
    UnsupportedOpError
        An op, op revision or attribute value has no exact converter.
    """
    model = source if isinstance(source, onnx.ModelProto) else load_model(source)
    if output is not None:
        model = select_output(model, output)
    try:
        return Twin(model, clean(model, layout))
    except UnsupportedOpError as exc:
        if output is None:
            _suggest_output(model, exc)
        raise


def _suggest_output(model: onnx.ModelProto, error: UnsupportedOpError) -> None:
    """Name, in ``error``'s message, the outputs whose own subgraph has a converter for every op."""
    names = [o.name for o in model.graph.output]
    if len(names) < 2:
        return
    free = []
    for name in names:
        try:
            cleaned = clean(select_output(model, name))
            resolve_all(cleaned.graph, cleaned.opsets)
        except DmbpOnnxError:
            continue
        free.append(name)
    if free:
        error.args = (f"{error.args[0]}; output(s) {', '.join(map(repr, free))} do not need it: "
                      f"choose one with output= (--output NAME)",)

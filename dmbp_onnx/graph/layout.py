"""The one layout decision (NCHW / NHWC, NCW / NWC) of a model's first input.

Made once, from the graph, by :func:`decide_layout`; preprocessing, the methods' pixel
maps, the figures and the metrics all read it from the twin. In order:

1. an explicit override (``--layout``, ``load(..., layout=)``);
2. the model's ``dmbp.layout`` metadata;
3. the graph: the input is followed through element-wise ops (a rescaling ``Mul``/``Add``,
   a ``Cast``, ...) to the first op that fixes its channel axis: ``Transpose(perm=[0, 3, 1, 2])``
   (``[0, 2, 1]`` at rank 3) means channels last; a channels-first op (``Conv``, a pool,
   ``BatchNormalization``) means channels first. Every path must agree;
4. the declared shape: a channel dimension of 1 or 3 at axis 1 only (channels first) or at
   the last axis only (channels last);
5. rank 3 defaults to NCW; rank 4 is *ambiguous*: layout ``"unknown"``, and a job that needs
   it (explaining images) raises :class:`~dmbp_onnx.errors.LayoutError` asking for ``--layout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_graphsurgeon as gs

from dmbp_onnx.errors import LayoutError

#: Layouts per input rank, channels first then channels last, with their channel axes.
LAYOUTS = {3: {"NCW": 1, "NWC": 2}, 4: {"NCHW": 1, "NHWC": 3}}
_ELEMENTWISE = frozenset(
    {"Mul", "Add", "Sub", "Div", "Cast", "CastLike", "Identity", "Dropout", "Relu", "LeakyRelu", "Clip",
     "Neg", "Abs", "Max", "Min", "Sqrt", "Floor", "Round"}
)  # fmt: skip
_CHANNELS_FIRST = frozenset(
    {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
     "BatchNormalization", "InstanceNormalization", "DepthToSpace", "SpaceToDepth", "MaxRoiPool"}
)  # fmt: skip


@dataclass(frozen=True)
class LayoutDecision:
    """The layout of the first input and how it was decided.

    Attributes
    ----------
    layout : str
        ``"NCHW"``, ``"NHWC"``, ``"NCW"``, ``"NWC"`` or ``"unknown"`` (other ranks, or ambiguous).
    channel_axis : int or None
        Channel axis in the user's layout.
    reason : str
        Where the decision came from (reported in ``report.json``), or why it is ambiguous.
    ambiguous : bool
        A rank-4 input whose layout neither the graph nor the shape tells.
    """

    layout: str
    channel_axis: int | None
    reason: str
    ambiguous: bool = False


def _show(shape) -> list:
    return [d if isinstance(d, int) else "?" for d in shape]


def _fixed(layout: str, rank: int, name: str, shape, origin: str) -> LayoutDecision:
    """A decision given by ``origin`` (override or metadata), checked against the input's rank."""
    layout = layout.upper()
    allowed = LAYOUTS.get(rank, {})
    if layout not in allowed:
        choices = ", ".join(allowed) or "none (no channel axis at this rank)"
        raise LayoutError(name, _show(shape), f"{origin} layout {layout!r} does not fit a rank-{rank} input; "
                          f"choose {choices}")
    return LayoutDecision(layout, allowed[layout], origin)


def _votes(tensor: gs.Tensor, rank: int) -> dict[str, str]:
    """Layout -> evidence, from the ops that first fix the channel axis on each path from the input."""
    first, last = LAYOUTS[rank]
    channels_last = [0, rank - 1, *range(1, rank - 1)]
    votes: dict[str, str] = {}
    stack, seen = [tensor], set()
    while stack:
        current = stack.pop()
        for node in current.outputs:
            if id(node) in seen:
                continue
            seen.add(id(node))
            perm = list(node.attrs.get("perm") or []) if node.op == "Transpose" else None
            if perm == channels_last:
                votes.setdefault(last, f"Transpose '{node.name}' (perm {perm}) moves the channels first")
            elif node.op in _CHANNELS_FIRST:
                votes.setdefault(first, f"{node.op} '{node.name}' reads the input channels first")
            elif node.op in _ELEMENTWISE or perm == list(range(rank)):
                stack.extend(t for t in node.outputs if t.shape is None or len(t.shape) == rank)
    return votes


def _from_shape(shape, rank: int) -> str | None:
    first, last = LAYOUTS[rank]
    head, tail = shape[1] in (1, 3), shape[-1] in (1, 3)
    if head != tail:
        return first if head else last
    return None


def decide_layout(graph: gs.Graph, override: str | None = None, metadata: str | None = None) -> LayoutDecision:
    """The layout of ``graph``'s first input (see the module docstring for the order of evidence).

    Parameters
    ----------
    graph : onnx_graphsurgeon.Graph
        The (cleaned) graph; not modified.
    override : str, optional
        A layout the user gave (``--layout``).
    metadata : str, optional
        The model's ``dmbp.layout`` metadata value.

    Raises
    ------
    LayoutError
        ``override`` or ``metadata`` does not fit the input's rank.
    """
    if not graph.inputs or graph.inputs[0].shape is None:
        return LayoutDecision("unknown", None, "the first input declares no shape")
    tensor = graph.inputs[0]
    shape, rank = list(tensor.shape), len(tensor.shape)
    if override is not None:
        return _fixed(override, rank, tensor.name, shape, "--layout")
    if metadata is not None:
        return _fixed(metadata, rank, tensor.name, shape, "metadata dmbp.layout")
    if rank not in LAYOUTS:
        return LayoutDecision("unknown", None, f"a rank-{rank} input has no image layout")
    votes = _votes(tensor, rank)
    if len(votes) == 1:
        ((layout, evidence),) = votes.items()
        return LayoutDecision(layout, LAYOUTS[rank][layout], f"graph: {evidence}")
    if len(votes) > 1:
        return LayoutDecision("unknown", None, "ambiguous: the graph reads the input both ways ("
                              + "; ".join(votes.values()) + ")", ambiguous=rank == 4)
    guessed = _from_shape(shape, rank)
    if guessed is not None:
        return LayoutDecision(guessed, LAYOUTS[rank][guessed], f"shape: a 1- or 3-channel axis in {_show(shape)}")
    if rank == 3:
        return LayoutDecision("NCW", 1, "default for a rank-3 input")
    return LayoutDecision("unknown", None, f"ambiguous: no op in the graph fixes the channel axis and the "
                          f"shape {_show(shape)} does not tell", ambiguous=True)

"""Rewrite passes on onnx-graphsurgeon graphs, and :func:`clean`, which runs them in order.

Each pass is a small function ``(graph) -> bool`` that rewrites ``graph`` in place and
says whether it changed anything. Node names stay the ONNX names; graph outputs keep
their names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from dmbp_onnx.graph.layout import decide_layout
from dmbp_onnx.graph.rewrite import (
    bypass,
    constant_values,
    is_graph_output,
    private_producer,
    quiet_graphsurgeon,
    static_shape,
)

FOLD_SIZE_LIMIT = 1 << 28
"""Constant folding leaves tensors larger than this many bytes to run time."""


@dataclass
class CleanGraph:
    """A cleaned graph ready for the twin builder.

    Attributes
    ----------
    graph : onnx_graphsurgeon.Graph
        The rewritten graph.
    opsets : dict of str to int
        Opset version imported per domain ("" is ai.onnx).
    passes_applied : list of str
        Names of the passes that changed the graph, in order.
    layout : str
        Layout of the first input: "NCHW", "NHWC", "NCW", "NWC" or "unknown"
        (:func:`~dmbp_onnx.graph.layout.decide_layout`).
    channel_axis : int or None
        Channel axis of the first input in the user's layout.
    layout_reason : str
        How the layout was decided, or why it is ambiguous.
    output_activation : tuple of (str, int) or None
        ``("Softmax" | "LogSoftmax", axis)`` when a terminal activation was split off
        the (first) output, so the twin's output is the logits.
    """

    graph: gs.Graph
    opsets: dict[str, int]
    passes_applied: list[str] = field(default_factory=list)
    layout: str = "unknown"
    channel_axis: int | None = None
    output_activation: tuple[str, int] | None = None
    layout_reason: str = ""


def opsets_of(model: onnx.ModelProto) -> dict[str, int]:
    """Opset version per domain, "ai.onnx" normalised to ""."""
    opsets = {}
    for entry in model.opset_import:
        domain = "" if entry.domain in ("", "ai.onnx") else entry.domain
        opsets[domain] = int(entry.version)
    return opsets


def _signature(graph: gs.Graph) -> tuple:
    return tuple(n.op for n in graph.nodes), len(graph.tensors())


def split_shape_ranges(graph: gs.Graph) -> None:
    """Rewrite each ``Shape(start, end)`` as ``Shape -> Slice`` along axis 0.

    onnx-graphsurgeon 0.6.1's shape folding ignores ``start``/``end`` (it folds such a
    node, or a Gather/Slice of it, as if it returned the full shape). A plain Shape
    followed by a Slice means the same and is folded correctly: only the dimensions
    the slice keeps must be static. The attributes exist from opset 15 on; before that
    the node is left for the converter to refuse.
    """
    if graph.opset < 15:
        return
    taken_tensors = graph.tensors()
    taken_nodes = {n.name: n for n in graph.nodes}
    for node in list(graph.nodes):
        if node.op != "Shape" or not ({"start", "end"} & set(node.attrs)) or _domain_of(node):
            continue
        start = int(node.attrs.pop("start", 0))
        end = node.attrs.pop("end", None)
        if start == 0 and end is None:
            continue
        out = node.outputs[0]
        bounds = [start, np.iinfo(np.int64).max if end is None else int(end), 0]
        names = [_fresh_name(taken_tensors, f"{out.name}_{part}") for part in ("full", "start", "end", "axis")]
        for name in names:
            taken_tensors[name] = None
        full = gs.Variable(names[0], dtype=np.int64)
        consts = [gs.Constant(n, np.array([v], dtype=np.int64)) for n, v in zip(names[1:], bounds)]
        node.outputs[0] = full
        slice_name = _fresh_name(taken_nodes, f"{node.name}_range")
        taken_nodes[slice_name] = None
        graph.nodes.append(gs.Node("Slice", name=slice_name, inputs=[full, *consts], outputs=[out]))


def _domain_of(node: gs.Node) -> str:
    return "" if node.domain in (None, "", "ai.onnx") else node.domain


def fold_constants(graph: gs.Graph) -> bool:
    """Evaluate everything that depends only on constants; lift Constant nodes to initializers.

    Shape nodes fold only when their input shape is fully static, so a dynamic batch
    dimension is never baked in; a Shape with ``start``/``end`` is first split into
    Shape and Slice (:func:`split_shape_ranges`), so it folds only when the dimensions
    it keeps are static. Tensors above :data:`FOLD_SIZE_LIMIT` bytes stay unfolded.
    """
    before = _signature(graph)
    split_shape_ranges(graph)
    with quiet_graphsurgeon():
        graph.toposort()
        graph.fold_constants(fold_shapes=True, size_threshold=FOLD_SIZE_LIMIT, error_ok=True)
        graph.cleanup().toposort()
    return _signature(graph) != before


def _bn_scale_shift(graph: gs.Graph, node: gs.Node) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel (scale, shift) of an inference BatchNormalization, in float64."""
    params = [constant_values(t) for t in node.inputs[1:5]]
    if len(params) != 4 or any(p is None for p in params):
        return None
    if node.attrs.get("training_mode", 0) or not node.attrs.get("spatial", 1):
        return None
    if any(t.outputs or is_graph_output(graph, t) for t in node.outputs[1:]):
        return None
    gamma, beta, mean, var = (p.astype(np.float64).reshape(-1) for p in params)
    scale = gamma / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
    return scale, beta - mean * scale


def _conv_params(conv: gs.Node) -> tuple[np.ndarray, np.ndarray] | None:
    """(weight, bias) of a Conv with constant float parameters, bias zero when absent."""
    if conv.op != "Conv" or len(conv.inputs) < 2:
        return None
    weight = constant_values(conv.inputs[1])
    if weight is None or not np.issubdtype(weight.dtype, np.floating):
        return None
    bias = constant_values(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2].name else None
    if len(conv.inputs) > 2 and conv.inputs[2].name and bias is None:
        return None
    if bias is None:
        bias = np.zeros(weight.shape[0], dtype=weight.dtype)
    return weight, bias


def _fresh_name(taken: dict, base: str) -> str:
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def _set_conv_params(graph: gs.Graph, conv: gs.Node, weight: np.ndarray, bias: np.ndarray, dtype) -> None:
    """Give ``conv`` new constant weight and bias (the old ones may be shared)."""
    taken = graph.tensors()
    base = conv.name or conv.inputs[1].name
    w = gs.Constant(_fresh_name(taken, f"{base}.weight_folded"), np.ascontiguousarray(weight.astype(dtype)))
    b = gs.Constant(_fresh_name(taken, f"{base}.bias_folded"), np.ascontiguousarray(bias.astype(dtype)))
    conv.inputs[1] = w
    if len(conv.inputs) > 2:
        conv.inputs[2] = b
    else:
        conv.inputs.append(b)


def _absorb(conv: gs.Node, node: gs.Node) -> None:
    """Make ``conv`` write ``node``'s output and drop ``node``."""
    out = node.outputs[0]
    node.outputs.clear()
    node.inputs.clear()
    conv.outputs[0] = out


def fold_batchnorm_into_conv(graph: gs.Graph) -> bool:
    """Fold a BatchNormalization that is the only consumer of a Conv into its weights."""
    changed = False
    for node in list(graph.nodes):
        if node.op != "BatchNormalization" or not node.inputs:
            continue
        conv = private_producer(graph, node.inputs[0], node)
        params = _conv_params(conv) if conv is not None else None
        shift_scale = _bn_scale_shift(graph, node)
        if params is None or shift_scale is None:
            continue
        weight, bias = params
        scale, shift = shift_scale
        if scale.shape[0] != weight.shape[0]:
            continue
        w = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
        b = bias.astype(np.float64) * scale + shift
        _set_conv_params(graph, conv, w, b, weight.dtype)
        _absorb(conv, node)
        changed = True
    if changed:
        graph.cleanup().toposort()
    return changed


def _per_channel(values: np.ndarray, rank: int, channels: int, axis: int) -> np.ndarray | None:
    """The constant as a float64 vector over ``axis``, or None if it is not per-channel."""
    if values.ndim > rank or not np.issubdtype(values.dtype, np.floating):
        return None
    shape = (1,) * (rank - values.ndim) + values.shape
    if any(d != 1 for k, d in enumerate(shape) if k != axis) or shape[axis] not in (1, channels):
        return None
    return np.broadcast_to(values.astype(np.float64).reshape(shape[axis]), (channels,))


def _conv_upstream(graph: gs.Graph, tensor: gs.Tensor, reader: gs.Node) -> tuple[gs.Node, int] | None:
    """The Conv computing ``tensor``, directly or through private Transposes, and where its channels are.

    Returns the Conv and the axis of ``tensor`` that holds the Conv's output channels.
    """
    axes = None  # axes[j]: the axis, at the current level, of axis j of ``tensor``
    while True:
        producer = private_producer(graph, tensor, reader)
        if producer is None or (producer.op == "Transpose" and producer.attrs.get("perm") is None):
            return None
        if producer.op == "Conv":
            if axes is None:
                return producer, 1
            return (producer, axes.index(1)) if 1 in axes else None
        if producer.op != "Transpose":
            return None
        perm = list(producer.attrs["perm"])
        axes = perm if axes is None else [perm[a] for a in axes]
        tensor, reader = producer.inputs[0], producer


def fold_affine_into_conv(graph: gs.Graph) -> bool:
    """Fold per-channel constant Mul/Add/Sub/Div after a Conv into its weights.

    Covers BatchNormalization exported as Sub/Mul/Add (also behind the NCHW->NHWC
    Transpose Keras 3 puts after every conv; the Transpose stays) and a bias exported
    as a separate Add.
    """
    changed = False
    progress = True
    while progress:
        progress = False
        for node in list(graph.nodes):
            if node.op not in ("Mul", "Add", "Sub", "Div") or len(node.inputs) != 2:
                continue
            for position in (0, 1):
                found = _conv_upstream(graph, node.inputs[position], node)
                params = _conv_params(found[0]) if found is not None else None
                other = constant_values(node.inputs[1 - position])
                if params is None or other is None:
                    continue
                (conv, axis), (weight, bias) = found, params
                vec = _per_channel(other, weight.ndim, weight.shape[0], axis)
                folded = None if vec is None else _affine(node.op, position, vec, weight, bias)
                if folded is None or not bypass(graph, node, node.inputs[position]):
                    continue
                _set_conv_params(graph, conv, *folded, weight.dtype)
                changed = progress = True
                break
        if progress:
            graph.cleanup().toposort()
    return changed


def _affine(op: str, position: int, vec: np.ndarray, weight: np.ndarray, bias: np.ndarray):
    w, b = weight.astype(np.float64), bias.astype(np.float64)
    column = vec.reshape((-1,) + (1,) * (weight.ndim - 1))
    if op == "Mul":
        return w * column, b * vec
    if op == "Add":
        return w, b + vec
    if op == "Sub":
        return (w, b - vec) if position == 0 else (-w, vec - b)
    if op == "Div" and position == 0 and np.all(vec != 0):
        return w / column, b / vec
    return None


def _cast_target(node: gs.Node) -> np.dtype | None:
    """The numpy type a Cast (``to``) or CastLike (its input 1's type) casts to; None if unknown."""
    if node.op == "CastLike":
        like = node.inputs[1].dtype if len(node.inputs) > 1 else None
        return None if like is None or isinstance(like, int) else np.dtype(like)
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(int(node.attrs["to"])))
    except (KeyError, TypeError, ValueError):
        return None


def _is_noop(graph: gs.Graph, node: gs.Node) -> gs.Tensor | None:
    """The tensor that ``node``'s output equals, when the node is a no-op."""
    if not node.inputs or not node.outputs:
        return None
    src = node.inputs[0]
    if node.op == "Identity":
        return src
    if node.op == "Dropout":
        extra = node.outputs[1:]
        if any(t.outputs or is_graph_output(graph, t) for t in extra):
            return None
        if not node.attrs.get("is_test", 1):  # opset < 7: is_test=0 means training
            return None
        if len(node.inputs) > 2 and node.inputs[2].name:
            training = constant_values(node.inputs[2])
            if training is None or bool(training.reshape(-1)[0]):
                return None
        return src
    if node.op in ("Cast", "CastLike"):
        to = _cast_target(node)
        if to is None or src.dtype is None or isinstance(src.dtype, int):  # int: a type numpy lacks
            return None
        return src if np.dtype(src.dtype) == to else None
    if node.op == "Reshape" and len(node.inputs) > 1:
        shape, target = static_shape(src), constant_values(node.inputs[1])
        if shape is None or target is None or target.size != len(shape):
            return None
        keep_zero = node.attrs.get("allowzero", 0)
        resolved = [d if v == 0 and not keep_zero else int(v) for d, v in zip(shape, target.tolist())]
        if resolved.count(-1) == 1:
            known = int(np.prod([d for d in resolved if d != -1]))
            resolved[resolved.index(-1)] = int(np.prod(shape)) // known if known else -1
        return src if resolved == shape else None
    if node.op == "Transpose":
        perm = node.attrs.get("perm")
        if perm is not None and list(perm) == sorted(perm):
            return src
        first = private_producer(graph, src, node)
        if first is None or first.op != "Transpose" or perm is None:
            return None
        inner = first.attrs.get("perm")
        if inner is None or len(inner) != len(perm):
            return None
        if all(inner[perm[i]] == i for i in range(len(perm))):
            return first.inputs[0]
    return None


def remove_noops(graph: gs.Graph) -> bool:
    """Drop Identity, inference Dropout, same-type Cast/CastLike, same-shape Reshape, cancelling Transposes."""
    changed = False
    for node in list(graph.nodes):
        if not node.outputs:
            continue
        src = _is_noop(graph, node)
        if src is not None and bypass(graph, node, src):
            changed = True
    if changed:
        graph.cleanup().toposort()
    return changed


def terminal_softmax(graph: gs.Graph) -> tuple[gs.Node, int] | None:
    """The Softmax/LogSoftmax producing the first graph output, with its per-axis axis.

    None when there is none, when another node also reads its output, or when (before
    opset 13) its 2-D coercion is not a softmax along one axis.
    """
    if not graph.outputs or len(graph.outputs[0].inputs) != 1:
        return None
    node = graph.outputs[0].inputs[0]
    if node.op not in ("Softmax", "LogSoftmax") or not node.inputs or graph.outputs[0].outputs:
        return None
    shape = node.inputs[0].shape if node.inputs[0].shape is not None else node.outputs[0].shape
    rank = len(shape) if shape is not None else None
    old = graph.opset < 13
    axis = int(node.attrs.get("axis", 1 if old else -1))
    if rank is not None:
        if not -rank <= axis < rank:
            return None
        axis %= rank
    if old:
        trailing = None if rank is None else shape[axis + 1 :]
        if trailing is None or not all(isinstance(d, int) and d == 1 for d in trailing):
            return None
    return node, axis


def split_terminal_softmax(graph: gs.Graph) -> bool:
    """Remove a terminal Softmax/LogSoftmax; the first output keeps its name but holds the logits."""
    found = terminal_softmax(graph)
    if found is None:
        return False
    node, _ = found
    if not bypass(graph, node, node.inputs[0]):
        return False
    graph.cleanup().toposort()
    return True


def _name_nodes(graph: gs.Graph) -> None:
    taken = {n.name for n in graph.nodes if n.name}
    seen: set[str] = set()
    counter = 0
    for node in graph.nodes:
        if node.name and node.name not in seen:
            seen.add(node.name)
            continue
        base = f"{node.name}_" if node.name else f"{node.op}_"
        while f"{base}{counter}" in taken:
            counter += 1
        node.name = f"{base}{counter}"
        taken.add(node.name)
        seen.add(node.name)


PASSES = (
    fold_constants,
    remove_noops,
    fold_batchnorm_into_conv,
    fold_affine_into_conv,
    split_terminal_softmax,
)
"""The passes :func:`clean` runs, in order, repeated until none changes the graph."""

MAX_ROUNDS = 4
"""Most rounds of :data:`PASSES` (each fold removes nodes, so this bounds the work)."""


def clean(model: onnx.ModelProto, layout: str | None = None) -> CleanGraph:
    """Run every pass on ``model`` and return the cleaned graph.

    Parameters
    ----------
    model : onnx.ModelProto
        A loaded model (see :func:`dmbp_onnx.graph.load.load_model`); not modified.
    layout : str, optional
        The first input's layout, overriding the decision of
        :func:`~dmbp_onnx.graph.layout.decide_layout` (which reads the graph).

    Returns
    -------
    CleanGraph
        Topologically sorted graph whose nodes all have unique non-empty names.

    Raises
    ------
    LayoutError
        ``layout`` (or the ``dmbp.layout`` metadata) does not fit the first input's rank.
    """
    if not model.graph.value_info and len(model.graph.node) > 1:
        try:
            model = onnx.shape_inference.infer_shapes(model, data_prop=True)
        except (onnx.shape_inference.InferenceError, RuntimeError):
            pass  # shapes are hints: passes that need them skip
    with quiet_graphsurgeon():
        graph = gs.import_onnx(model)
    graph.toposort()
    _name_nodes(graph)
    applied: list[str] = []
    activation = None
    for _ in range(MAX_ROUNDS):  # a fold can expose another (Conv -> bias Add -> BatchNorm)
        changed = False
        for rewrite in PASSES:
            found = terminal_softmax(graph) if rewrite is split_terminal_softmax else None
            if rewrite(graph):
                changed = True
                if rewrite.__name__ not in applied:
                    applied.append(rewrite.__name__)
                if found is not None:
                    activation = (found[0].op, found[1])
        if not changed:
            break
    graph.toposort()
    metadata = {p.key: p.value for p in model.metadata_props}.get("dmbp.layout")
    decision = decide_layout(graph, layout, metadata)
    return CleanGraph(graph, opsets_of(model), applied, decision.layout, decision.channel_axis, activation,
                      decision.reason)

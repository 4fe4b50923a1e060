"""The twin a job explains: the chosen output's subgraph, with the one layout decision checked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dmbp_onnx.errors import LayoutError

if TYPE_CHECKING:
    from dmbp_onnx.graph.outputs import OutputChoice
    from dmbp_onnx.twin.twin import Twin


def load_twin(path: Path, output: str | None = None, layout: str | None = None) -> tuple[Twin, OutputChoice]:
    """Load ``path`` as the twin of the explained output's subgraph.

    Parameters
    ----------
    path : pathlib.Path
        The ONNX file.
    output : str, optional
        The output to explain; default :func:`~dmbp_onnx.graph.outputs.choose_output`'s rule.
    layout : str, optional
        Input layout override (``--layout``).

    Returns
    -------
    twin, choice
        The twin (its one output is the explained one) and how that output was chosen.

    Raises
    ------
    UnknownOutputError
        ``output`` is not a declared output.
    LayoutError
        ``layout`` does not fit the input.
    """
    from dmbp_onnx.graph.load import load_model
    from dmbp_onnx.graph.outputs import choose_output
    from dmbp_onnx.twin.twin import load

    model = load_model(path)
    choice = choose_output(model, output)
    return load(model, output=choice.name, layout=layout), choice


def require_layout(twin: Twin) -> None:
    """Refuse to explain images of a rank-4 input whose layout is ambiguous.

    Raises
    ------
    LayoutError
        Naming the input, its shape and why neither the graph nor the shape tells; it asks
        for ``--layout``.
    """
    spec = twin.inputs[0]
    if twin.layout == "unknown" and len(spec.shape or ()) == 4:
        raise LayoutError(spec.name, list(spec.shape), f"the layout is {twin.clean_graph.layout_reason}; "
                          "pass --layout nchw or --layout nhwc (layout= in the API)")

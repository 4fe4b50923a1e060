"""One typed exception family for every error a user can cause.

The CLI prints any :class:`DmbpOnnxError` as one line and exits 2 (1 for a
:class:`MismatchError`); everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DmbpOnnxError(Exception):
    """Base class of every error a user can cause (bad file, bad input, unsupported model)."""


class ModelLoadError(DmbpOnnxError):
    """The file is not a usable ONNX model (corrupt, hostile, malformed, unreadable)."""


class ExternalDataError(ModelLoadError):
    """External tensor data is missing or points outside the model's own folder."""


class UnsupportedModelError(DmbpOnnxError):
    """The model is well formed but uses something the twin cannot rebuild exactly."""


class UnsupportedOpError(UnsupportedModelError):
    """An operator, operator revision or attribute value has no exact converter.

    Parameters
    ----------
    op : str
        ONNX operator type, e.g. ``"Conv"``.
    opset : int
        The opset version the model imports for the operator's domain.
    node : str
        Name of the offending node.
    detail : str
        What exactly is not supported (an attribute, a value, a revision).
    """

    def __init__(self, op: str, opset: int, node: str, detail: str) -> None:
        self.op, self.opset, self.node, self.detail = op, opset, node, detail
        super().__init__(f"unsupported {op} (opset {opset}) at node '{node}': {detail}")


class IneligibleModelError(DmbpOnnxError):
    """The model is not piecewise linear between input and target, so DMBP does not apply.

    Parameters
    ----------
    nodes : list of (str, str)
        ``(node name, op type)`` of every offending node.
    """

    def __init__(self, nodes: list[tuple[str, str]]) -> None:
        self.nodes = list(nodes)
        listed = ", ".join(f"{name} ({op})" for name, op in self.nodes[:10])
        more = f" and {len(self.nodes) - 10} more" if len(self.nodes) > 10 else ""
        super().__init__(
            "model is not piecewise linear between input and target; "
            f"offending nodes: {listed}{more}"
        )


class InputError(DmbpOnnxError):
    """A user-supplied input (array, image, target, option) is invalid."""


class MismatchError(DmbpOnnxError):
    """The twin disagrees with onnxruntime beyond tolerance."""


class UnknownOutputError(InputError):
    """The requested output is not one the model declares.

    Parameters
    ----------
    name : str
        The output asked for.
    available : list of str
        The outputs the model declares, in order.
    """

    def __init__(self, name: str, available: list[str]) -> None:
        self.name, self.available = name, list(available)
        listed = ", ".join(f"'{n}'" for n in self.available)
        super().__init__(f"the model has no output '{name}'; its outputs are {listed}")


class LayoutError(InputError):
    """The input layout cannot be decided from the graph (or an override contradicts the input).

    Parameters
    ----------
    input : str
        Name of the graph input.
    shape : list
        Its declared shape.
    reason : str
        Why the layout is ambiguous or the override does not fit.
    """

    def __init__(self, input: str, shape: list, reason: str) -> None:
        self.input, self.shape, self.reason = input, list(shape), reason
        super().__init__(f"input '{input}' {self.shape}: {reason}")

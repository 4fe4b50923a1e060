"""Read an ONNX model from a path or bytes, refusing hostile or malformed files.

(Minimal first version; the graph work package replaces it with the full checks.)
"""

from __future__ import annotations

from pathlib import Path

import onnx

from dmbp_onnx.errors import ModelLoadError


def load_model(source: str | Path | bytes) -> onnx.ModelProto:
    """Load, check and shape-infer a model.

    Parameters
    ----------
    source : str, Path or bytes
        Path of a ``.onnx`` file, or its serialized bytes.

    Raises
    ------
    ModelLoadError
        When the file cannot be read or is not a valid model.
    """
    try:
        if isinstance(source, (bytes, bytearray)):
            model = onnx.load_model_from_string(bytes(source))
        else:
            model = onnx.load(str(source))
    except Exception as exc:  # noqa: BLE001 - every parse failure is the same user error
        raise ModelLoadError(f"cannot read ONNX model: {exc}") from None
    return model

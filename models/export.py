"""Export a torch module to ONNX bytes with either torch exporter, batch dimension dynamic."""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Literal

import onnx
import torch
from torch.onnx import TrainingMode

Exporter = Literal["legacy", "dynamo"]


def export_onnx(
    model: torch.nn.Module,
    example: torch.Tensor,
    exporter: Exporter = "legacy",
    opset: int | None = None,
    fold_constants: bool = True,
    preserve_training_mode: bool = False,
    dynamic_batch: bool = True,
    optimize: bool = True,
    input_name: str = "input",
    output_name: str = "output",
) -> onnx.ModelProto:
    """Export ``model`` (in eval mode) on ``example`` and return the ModelProto.

    Parameters
    ----------
    model : torch.nn.Module
        A single-input, single-output module; it is switched to eval mode.
    example : torch.Tensor
        Example input; with ``dynamic_batch`` its batch size should be >= 2 (the
        dynamo exporter specialises a batch of 1).
    exporter : {"legacy", "dynamo"}
        ``torch.onnx.export(dynamo=False)`` (TorchScript) or ``dynamo=True``
        (needs onnxscript; weights are kept inside the model, progress output is
        silenced).
    opset : int, optional
        Opset to export; each exporter's default when None (legacy 17, dynamo 18+).
    fold_constants : bool
        Legacy exporter: ``do_constant_folding``.
    preserve_training_mode : bool
        Legacy exporter: ``training=TrainingMode.PRESERVE`` instead of ``EVAL``
        (an eval-mode module then keeps its BatchNormalization nodes).
    dynamic_batch : bool
        Declare axis 0 of input and output dynamic.
    optimize : bool
        Dynamo exporter: run onnxscript's graph optimiser (off, the graph keeps the
        exporter's raw decompositions, e.g. CastLike and Expand).
    input_name, output_name : str
        Names of the graph input and output.
    """
    model = model.eval()
    if exporter == "legacy":
        buffer = io.BytesIO()
        axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter warns that it is deprecated
            torch.onnx.export(
                model,
                (example,),
                buffer,
                dynamo=False,
                opset_version=opset or 17,
                do_constant_folding=fold_constants,
                training=TrainingMode.PRESERVE if preserve_training_mode else TrainingMode.EVAL,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_axes=axes,
            )
        return onnx.load_model_from_string(buffer.getvalue())
    if exporter == "dynamo":
        shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (example,),
                None,
                dynamo=True,
                optimize=optimize,
                external_data=False,
                verbose=False,
                opset_version=opset,
                input_names=[input_name],
                output_names=[output_name],
                dynamic_shapes=shapes,
            )
        return program.model_proto
    raise ValueError(f"unknown exporter {exporter!r}; expected 'legacy' or 'dynamo'")

"""onnxruntime sessions that say which execution provider really runs.

``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` among the available providers
even on a machine without a GPU (the list describes the build, not the machine),
so the provider is always passed explicitly and read back from the session.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import onnx

from dmbp_onnx.device import DEVICES, device_name  # noqa: F401  (DEVICES: re-exported for the CLI)
from dmbp_onnx.errors import InputError, UnsupportedModelError

_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"


def _quiet_options():
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return options


def _provider_attempts(device: str) -> list[list]:
    """Provider lists to try in order: CUDA (exact fp32 math, then default options) before CPU."""
    import onnxruntime as ort

    attempts: list[list] = []
    if device != "cpu" and _CUDA in ort.get_available_providers():
        chosen = {"device_id": device.split(":")[1]} if ":" in device else {}  # cuda:N
        attempts.append([(_CUDA, {"use_tf32": "0", **chosen}), _CPU])
        attempts.append([(_CUDA, chosen) if chosen else _CUDA, _CPU])
    attempts.append([_CPU])
    return attempts


def make_session(model_or_bytes: onnx.ModelProto | bytes | str | Path, device: str = "auto"):
    """An ``onnxruntime.InferenceSession`` on CPU, or on CUDA where it really works.

    Parameters
    ----------
    model_or_bytes : onnx.ModelProto, bytes, str or Path
        The model, its serialized bytes, or the path of a ``.onnx`` file.
    device : {"auto", "cpu", "cuda", "cuda:N"}
        "cpu" uses only the CPU provider; "auto" and "cuda" (GPU N for "cuda:N") put the CUDA provider
        first when this onnxruntime build has one, and keep it only if the session
        actually runs on it (read ``session.get_providers()``); otherwise the
        session runs on CPU.

    Returns
    -------
    onnxruntime.InferenceSession

    Raises
    ------
    InputError
        For an unknown ``device``.
    UnsupportedModelError
        When onnxruntime cannot load the model (unknown op revision, invalid graph).
    """
    import onnxruntime as ort

    device_name(device)
    ort.set_default_logger_severity(3)
    if isinstance(model_or_bytes, onnx.ModelProto):
        source: bytes | str = model_or_bytes.SerializeToString()
    elif isinstance(model_or_bytes, Path):
        source = str(model_or_bytes)
    else:
        source = model_or_bytes
    error: Exception | None = None
    for providers in _provider_attempts(device):
        try:
            # onnxruntime prints its provider fallback notices on stdout: keep stdout clean.
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                session = ort.InferenceSession(source, _quiet_options(), providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped pybind errors
            error = exc
            continue
        return session  # where CUDA was not usable the session already runs on CPU
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    raise UnsupportedModelError(f"onnxruntime cannot load the model: {first_line}")


def run_session(session, feeds: dict, output_names: list[str] | None = None) -> list:
    """Run ``session`` on ``feeds``; onnxruntime's untyped failures become :class:`InputError`.

    Parameters
    ----------
    session : onnxruntime.InferenceSession
        A session from :func:`make_session`.
    feeds : dict of str to numpy.ndarray
        One array per graph input.
    output_names : list of str, optional
        Outputs to fetch; all declared outputs by default.

    Returns
    -------
    list of numpy.ndarray
    """
    try:
        return session.run(output_names, feeds)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises untyped pybind errors
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in feeds.items())
        raise InputError(f"onnxruntime cannot run the model on inputs {shapes}: {first_line}") from None

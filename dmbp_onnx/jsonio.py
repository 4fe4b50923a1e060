"""Strict JSON for everything the package writes (reports, ``--json`` output, worker messages).

JSON has no NaN or infinity, so :func:`dumps` writes each non-finite float as ``null``
and, when the document is an object, says where it did so in a top-level
``"non_finite"`` object mapping the value's JSON Pointer (RFC 6901) to ``"nan"``,
``"inf"`` or ``"-inf"``. A document whose numbers are all finite has no such key.
NumPy scalars and arrays and torch tensors become plain numbers and lists; tuples
become lists; any other object becomes its ``str``. :func:`loads` reverses the
note, so a round trip (e.g. between the audit's processes) keeps every value.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

NON_FINITE_KEY = "non_finite"
"""Top-level key listing the values written as ``null`` because they were NaN or infinite."""


def _pointer_token(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _plain(value: Any, path: str, notes: dict[str, str]) -> Any:
    """``value`` as JSON-native Python, non-finite floats as None (recorded in ``notes``)."""
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{path}/{_pointer_token(str(k))}", notes) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{path}/{k}", notes) for k, v in enumerate(value)]
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    if isinstance(value, (np.ndarray, np.generic)):
        return _plain(value.tolist(), path, notes)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        notes[path] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def to_plain(value: Any) -> tuple[Any, dict[str, str]]:
    """``value`` as JSON-native Python and the JSON Pointers of the non-finite floats it held.

    Returns
    -------
    (object, dict of str to str)
        The converted value (non-finite floats as None) and ``{pointer: "nan" | "inf" | "-inf"}``.
    """
    notes: dict[str, str] = {}
    return _plain(value, "", notes), notes


def dumps(value: Any, indent: int | None = None) -> str:
    """Strict JSON of ``value`` (never a ``NaN``/``Infinity`` literal; see the module docstring).

    Raises
    ------
    ValueError
        ``value`` is an object that already has a ``"non_finite"`` key and holds non-finite floats.
    """
    plain, notes = to_plain(value)
    if notes and isinstance(plain, dict):
        if NON_FINITE_KEY in plain:
            raise ValueError(f"the document already has a '{NON_FINITE_KEY}' key")
        plain[NON_FINITE_KEY] = notes
    return json.dumps(plain, indent=indent, allow_nan=False, ensure_ascii=False)


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def loads(text: str) -> Any:
    """Parse strict JSON written by :func:`dumps`, putting the noted non-finite floats back.

    Raises
    ------
    json.JSONDecodeError
        ``text`` is not strict JSON (``NaN``/``Infinity`` literals included).
    """
    value = json.loads(text, parse_constant=_refuse_constant)
    if not isinstance(value, dict) or not isinstance(value.get(NON_FINITE_KEY), dict):
        return value
    for pointer, kind in value.pop(NON_FINITE_KEY).items():
        *parents, last = [_unescape(t) for t in pointer.split("/")[1:]]
        container = value
        for token in parents:
            container = container[int(token) if isinstance(container, list) else token]
        container[int(last) if isinstance(container, list) else last] = float(kind)
    return value


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"non-standard JSON constant {name}", name, 0)


def write(value: Any, path: str | Path, indent: int = 2) -> Path:
    """Write :func:`dumps` of ``value`` to ``path`` (UTF-8, trailing newline); returns the path."""
    path = Path(path)
    path.write_text(dumps(value, indent=indent) + "\n", encoding="utf-8")
    return path

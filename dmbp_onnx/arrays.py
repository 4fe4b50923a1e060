"""Reading one array from a ``.npy`` file, with typed errors naming the file (one reader for the package)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dmbp_onnx.errors import InputError


def read_npy(path: str | Path) -> np.ndarray:
    """The array stored in the ``.npy`` file ``path`` (never unpickles).

    Raises
    ------
    InputError
        When the file is missing or unreadable, is not a ``.npy`` array, or is an ``.npz`` archive.
    """
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
        if magic != np.lib.format.MAGIC_PREFIX and not magic.startswith(b"PK"):
            raise InputError(f"'{path}' is not a .npy file (no NumPy header)")
        value = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"cannot read '{path}' as a .npy array: file not found") from None
    except (OSError, ValueError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read '{path}' as a .npy array: {reason}") from None
    if not isinstance(value, np.ndarray):
        value.close()
        raise InputError(f"'{path}' is an .npz archive, not a .npy array: save one array per file with numpy.save")
    return value

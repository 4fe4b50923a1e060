"""Arrays shipped next to a model: ``<stem>.input.npy`` [+ ``<stem>.expected.npy``] or ``<stem>.npz``.

The ``.npz`` form is the one the fixture converters write: an ``input`` array and
optionally an ``output`` array (the source framework's own output).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dmbp_onnx.arrays import read_npy
from dmbp_onnx.errors import InputError


@dataclass(frozen=True)
class GivenArrays:
    """An input batch for the model and, when shipped, the outputs it should produce.

    Attributes
    ----------
    input : numpy.ndarray
        Values of the (single) graph input.
    expected : numpy.ndarray or None
        The expected first output, when shipped.
    source : str
        File name(s) the arrays came from.
    """

    input: np.ndarray
    expected: np.ndarray | None
    source: str


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise InputError(f"'{path.name}' is a .npy array, not an .npz archive")
        with archive:
            if "input" not in archive.files:
                raise InputError(f"'{path.name}' has no array named 'input' (it has {archive.files})")
            return archive["input"], archive["output"] if "output" in archive.files else None
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read '{path.name}' as an .npz archive: {exc}") from None


def find_given(model_path: Path) -> GivenArrays | None:
    """The arrays shipped next to ``model_path``, or None when there are none.

    ``<stem>.input.npy`` (with an optional ``<stem>.expected.npy``) wins over ``<stem>.npz``.

    Raises
    ------
    InputError
        When a file is there but unreadable, or ``<stem>.expected.npy`` has no input file.
    """
    stem = model_path.with_suffix("")
    npy_in = stem.with_name(stem.name + ".input.npy")
    npy_out = stem.with_name(stem.name + ".expected.npy")
    npz = stem.with_name(stem.name + ".npz")
    if npy_in.is_file():
        expected = read_npy(npy_out) if npy_out.is_file() else None
        source = npy_in.name + (f" + {npy_out.name}" if expected is not None else "")
        return GivenArrays(read_npy(npy_in), expected, source)
    if npy_out.is_file():
        raise InputError(f"'{npy_out.name}' is there but '{npy_in.name}' is missing")
    if npz.is_file():
        inputs, expected = _load_npz(npz)
        return GivenArrays(inputs, expected, npz.name)
    return None

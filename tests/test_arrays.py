"""The one .npy reader: arrays back, typed errors naming the file for everything else."""

import numpy as np
import pytest

from dmbp_onnx.arrays import read_npy
from dmbp_onnx.errors import InputError


def test_reads_an_array(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.arange(6, dtype=np.int16).reshape(2, 3))
    np.testing.assert_array_equal(read_npy(path), np.arange(6).reshape(2, 3))


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_text("hello"), "no NumPy header"),
        (lambda p: np.savez(p.with_suffix(""), a=np.ones(2)) or p.with_suffix(".npz").rename(p), r"\.npz archive"),
        (lambda p: np.save(p, np.array([{"a": 1}], dtype=object)), "cannot read"),
    ],
    ids=["missing", "not-npy", "npz", "pickled"],
)
def test_refuses_what_is_not_one_plain_array(tmp_path, write, message):
    path = tmp_path / "x.npy"
    write(path)
    with pytest.raises(InputError, match=message) as info:
        read_npy(path)
    assert "x.npy" in str(info.value)

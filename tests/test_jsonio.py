"""Strict JSON: NaN and infinity become null, noted by JSON Pointer, and come back on loading."""

import json
import math

import numpy as np
import pytest
import torch

from dmbp_onnx.jsonio import NON_FINITE_KEY, dumps, loads, to_plain, write


def _strict(text):
    def refuse(name):
        raise AssertionError(f"{name} is not strict JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_values_become_null_with_a_note():
    doc = {"score": float("nan"), "runs": [{"max_abs": np.float32("inf")}, {"max_abs": 0.5}],
           "a/b~c": {"low": -math.inf}, "ok": True}
    data = _strict(dumps(doc, indent=2))
    assert data["score"] is None and data["runs"] == [{"max_abs": None}, {"max_abs": 0.5}]
    assert data[NON_FINITE_KEY] == {"/score": "nan", "/runs/0/max_abs": "inf", "/a~1b~0c/low": "-inf"}
    assert data["ok"] is True


def test_finite_documents_have_no_note_and_numpy_torch_paths_become_plain():
    doc = {"n": np.int64(3), "x": np.array([[1.5, 2.0]], np.float32), "t": torch.tensor([1.0, 2.0]),
           "flag": np.bool_(False), "shape": (1, 2), "path": __import__("pathlib").Path("/m.onnx")}
    assert _strict(dumps(doc)) == {"n": 3, "x": [[1.5, 2.0]], "t": [1.0, 2.0], "flag": False, "shape": [1, 2],
                                   "path": "/m.onnx"}


def test_tensors_and_arrays_with_nan_are_noted_element_by_element():
    plain, notes = to_plain({"p": torch.tensor([0.5, float("nan")]), "q": np.array([np.inf])})
    assert plain == {"p": [0.5, None], "q": [None]} and notes == {"/p/1": "nan", "/q/0": "inf"}


def test_loads_puts_the_noted_values_back():
    doc = {"details": {"max_abs": float("inf"), "runs": [1.0, float("-inf")]}, "score": float("nan")}
    back = loads(dumps(doc))
    assert back["details"]["max_abs"] == math.inf and back["details"]["runs"] == [1.0, -math.inf]
    assert math.isnan(back["score"]) and NON_FINITE_KEY not in back


def test_loads_refuses_nan_literals():
    with pytest.raises(json.JSONDecodeError):
        loads('{"x": NaN}')


def test_a_document_already_using_the_note_key_is_refused():
    with pytest.raises(ValueError, match=NON_FINITE_KEY):
        dumps({NON_FINITE_KEY: 1, "x": float("nan")})


def test_write_is_strict_with_a_trailing_newline(tmp_path):
    path = write({"x": float("nan")}, tmp_path / "r.json")
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and _strict(text) == {"x": None, NON_FINITE_KEY: {"/x": "nan"}}

"""The torch-free option tables and the torch side that reads them."""

import inspect

import pytest

from dmbp_onnx import options
from dmbp_onnx.methods import METHODS, _registered
from dmbp_onnx.methods.dmbp.method import RULES


def test_methods_are_the_registry():
    assert list(METHODS) == list(options.METHOD_CLASSES)
    assert all(cls.name == name for name, cls in METHODS.items())


def test_a_misnamed_registration_is_refused(monkeypatch):
    monkeypatch.setitem(options.METHOD_CLASSES, "gradient", "dmbp_onnx.methods.baselines:SmoothGrad")
    with pytest.raises(ImportError, match="registered as 'gradient' but calls itself 'smoothgrad'"):
        _registered()


def test_rule_names_are_dmbps_rules():
    assert list(options.DMBP_RULES) == list(RULES)
    assert inspect.signature(METHODS["dmbp"]).parameters["rule"].default == options.DMBP_RULES[0]

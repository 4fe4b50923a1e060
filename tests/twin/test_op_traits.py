"""Op traits: one table, read by every part of the package; registration requires an entry."""

import pytest

from dmbp_onnx.op_traits import TRAITS, op_traits
from dmbp_onnx.twin.registry import converter, registered_ops


def test_every_registered_op_declares_its_traits():
    assert set(registered_ops()) <= set(TRAITS)


def test_registering_an_op_without_traits_is_refused():
    with pytest.raises(RuntimeError, match="op_traits"):
        converter("NoSuchOp", versions=(1,))


def test_unknown_and_foreign_ops_are_not_piecewise_linear():
    assert op_traits("NoSuchOp").piecewise_linear == ""
    assert op_traits("Relu", "com.example").piecewise_linear == ""
    assert op_traits("Relu", None).rectifier == "always"


def test_linear_layers_are_affine_randomisable_and_piecewise_linear():
    for op, traits in TRAITS.items():
        if traits.linear_layer:
            assert traits.affine and traits.randomisable and traits.piecewise_linear, op

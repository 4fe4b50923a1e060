"""Add, Sub, Mul, Div, Neg, Max, Min: broadcasting, constants on either side, integers."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from dmbp_onnx.errors import UnsupportedOpError
from oracle import check_twin
from ops_testlib import cases, check, float_input, init, make_model, opset_for, randn, single

BINARY = ["same", "broadcast", "const_right", "const_left"]


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("revision,case", cases("Add", BINARY))
def test_binary(op, revision, case):
    if case == "same":
        model = single(op, revision, [("a", (2, 3, 4)), ("b", (2, 3, 4))])
    elif case == "broadcast":
        model = single(op, revision, [("a", (2, 3, 4)), ("b", (3, 1))])
    elif case == "const_right":
        model = single(op, revision, [("a", (2, 3, 4))], inits=[init("b", randn(4, seed=3) + 3)])
    else:
        model = single(op, revision, [("a", (2, 3, 4))], inits=[init("b", randn(3, 1, seed=3))],
                       input_names=["b", "a"])
    check(model)


@pytest.mark.parametrize("revision,case", cases("Div", ["int64"]))
def test_integer_div_truncates(revision, case):
    node = helper.make_node("Div", ["a", "b"], ["y"], name="div")
    model = make_model(
        [node],
        [helper.make_tensor_value_info(n, TensorProto.INT64, [4]) for n in "ab"],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [4])],
        opset=opset_for("Div", revision),
    )
    a, b = np.array([7, -7, 9, 3], np.int64), np.array([2, 2, -4, 5], np.int64)
    twin = check_twin(model, [a, b])
    assert twin.forward_all(*map(__import__("torch").from_numpy, (a, b)))[0].dtype.is_floating_point is False


@pytest.mark.parametrize("revision,case", cases("Neg", ["float"]))
def test_neg(revision, case):
    check(single("Neg", revision, [("x", (2, 5))]))


VARIADIC = ["one", "two", "three", "relu_form", "relu6_form"]


@pytest.mark.parametrize("op", ["Max", "Min"])
@pytest.mark.parametrize("revision,case", cases("Max", VARIADIC))
def test_max_min(op, revision, case):
    bcast = revision >= 8
    if case == "one":
        model = single(op, revision, [("a", (2, 3))])
    elif case == "two":
        model = single(op, revision, [("a", (2, 3)), ("b", (3,) if bcast else (2, 3))])
    elif case == "three":
        model = single(op, revision, [("a", (2, 3)), ("b", (2, 3)), ("c", (1, 3) if bcast else (2, 3))])
    elif case == "relu_form":
        zero = np.zeros(() if bcast else (2, 3), np.float32)
        model = single(op, revision, [("a", (2, 3))], inits=[init("z", zero)])
    else:
        other = "Min" if op == "Max" else "Max"
        lo = np.zeros(() if bcast else (2, 3), np.float32)
        hi = np.full(() if bcast else (2, 3), 0.5, np.float32)
        nodes = [
            helper.make_node(op, ["a", "lo"], ["m"], name="first"),
            helper.make_node(other, ["m", "hi"], ["y"], name="second"),
        ]
        model = make_model(nodes, [float_input("a", (2, 3))], [float_input("y", (2, 3))],
                           [init("lo", lo), init("hi", hi)], opset=opset_for(op, revision))
    check(model)


def test_legacy_broadcast_revision_refused():
    node = helper.make_node("Add", ["a", "b"], ["y"], name="old_add", broadcast=1)
    model = make_model([node], [float_input("a", (2, 3)), float_input("b", (3,))], [float_input("y", (2, 3))],
                       opset=6)
    with pytest.raises(UnsupportedOpError, match=r"Add \(opset 6\) at node 'old_add'"):
        check_twin(model)


def _typed_model(op: str, dtype: int, opset: int, runtime_second: bool = True):
    value = helper.make_tensor_value_info
    second = [value("b", dtype, [3])] if runtime_second else []
    inits = [] if runtime_second else [helper.make_tensor("b", dtype, [3], [1, 2, 3])]
    node = helper.make_node(op, ["a", "b"], ["y"], name=f"{op.lower()}_typed")
    return make_model([node], [value("a", dtype, [3]), *second], [value("y", dtype, [3])], inits, opset=opset)


@pytest.mark.parametrize("op", ["Add", "Sub", "Div", "Max", "Min"])
@pytest.mark.parametrize("dtype", [TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64])
@pytest.mark.parametrize("runtime_second", [True, False], ids=["inputs", "constant"])
def test_unsigned_inputs_without_torch_kernels_are_refused(op, dtype, runtime_second):
    name = helper.tensor_dtype_to_np_dtype(dtype).name
    model = _typed_model(op, dtype, 14 if op in ("Add", "Sub", "Div") else 13, runtime_second)
    a = np.array([7, 1, 9], helper.tensor_dtype_to_np_dtype(dtype))
    with pytest.raises(UnsupportedOpError, match=rf"{op} \(opset 1[34]\) at node '{op.lower()}_typed'.*dtype {name}"):
        check_twin(model, [a, a] if runtime_second else [a])


@pytest.mark.parametrize("dtype", [TensorProto.UINT16, TensorProto.UINT32, TensorProto.UINT64])
def test_unsigned_mul_wraps_like_onnxruntime(dtype):
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    big = np.array([np.iinfo(np_type).max, 3, 0], np_type)
    check_twin(_typed_model("Mul", dtype, 14), [big, np.array([2, 5, 9], np_type)])


@pytest.mark.parametrize("dtype", [TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN])
def test_inputs_of_types_numpy_lacks_are_refused(dtype):
    with pytest.raises(UnsupportedOpError, match=r"Mul \(opset 14\) at node 'mul_typed'.*dtype (bfloat16|float8)"):
        check_twin(_typed_model("Mul", dtype, 14))

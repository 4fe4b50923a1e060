"""Cast and CastLike: numeric and bool targets, the dynamo exporter's CastLike patterns, refusals."""

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from dmbp_onnx.errors import UnsupportedOpError
from dmbp_onnx.twin.ops.cast import CastToTypeOf
from oracle import check_twin
from ops_testlib import cases, check, float_input, init, make_model, opset_for, randn

FLOAT, I64 = TensorProto.FLOAT, TensorProto.INT64
TARGETS = {"to_int64": I64, "to_float": FLOAT, "to_bool": TensorProto.BOOL, "to_double": TensorProto.DOUBLE,
           "to_int8": TensorProto.INT8, "to_half": TensorProto.FLOAT16}
LIKE_VALUES = {I64: np.int64(0), FLOAT: np.float32(0), TensorProto.BOOL: np.bool_(False),
               TensorProto.DOUBLE: np.float64(0), TensorProto.INT8: np.int8(0), TensorProto.FLOAT16: np.float16(0)}


def _model(nodes, opset, x_shape=(2, 3), inits=(), out_type=FLOAT, extra_inputs=()):
    out = helper.make_tensor_value_info("y", out_type, None)
    return make_model(nodes, [float_input("x", x_shape), *extra_inputs], [out], list(inits), opset=opset)


@pytest.mark.parametrize("revision,case", cases("Cast", ["to_int64", "to_float", "to_bool"]))
def test_cast(revision, case):
    nodes = [helper.make_node("Cast", ["x"], ["c"], name="cast", to=TARGETS[case]),
             helper.make_node("Cast", ["c"], ["y"], name="back", to=FLOAT)]
    check(_model(nodes, opset_for("Cast", revision)), [randn(2, 3) * 3])


@pytest.mark.parametrize("to", [TensorProto.STRING, TensorProto.FLOAT8E4M3FN, TensorProto.INT4])
def test_cast_refuses_exotic_types(to):
    node = helper.make_node("Cast", ["x"], ["y"], name="to_exotic", to=to)
    with pytest.raises(UnsupportedOpError, match=r"Cast \(opset 21\) at node 'to_exotic'.*type"):
        check_twin(_model([node], 21, out_type=to))


@pytest.mark.parametrize("source", [TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN, TensorProto.FLOAT8E5M2FNUZ])
@pytest.mark.parametrize("opset", [13, 21])
def test_cast_refuses_sources_numpy_lacks(source, opset):
    name = helper.tensor_dtype_to_string(source).removeprefix("TensorProto.").lower()
    node = helper.make_node("Cast", ["x"], ["y"], name="from_exotic", to=FLOAT)
    value = helper.make_tensor_value_info
    model = make_model([node], [value("x", source, [2])], [float_input("y", [2])], opset=opset)
    with pytest.raises(UnsupportedOpError, match=rf"Cast \(opset {opset}\) at node 'from_exotic'.*dtype {name}"):
        check_twin(model)


def test_cast_refuses_a_bfloat16_target():
    node = helper.make_node("Cast", ["x"], ["y"], name="to_bf16", to=TensorProto.BFLOAT16)
    with pytest.raises(UnsupportedOpError, match=r"Cast \(opset 21\) at node 'to_bf16'.*bfloat16"):
        check_twin(_model([node], 21, out_type=TensorProto.BFLOAT16))


@pytest.mark.parametrize("revision,case", cases("CastLike", TARGETS))
def test_cast_like_constant_target(revision, case):
    like = init("like", np.asarray(LIKE_VALUES[TARGETS[case]]))
    nodes = [helper.make_node("CastLike", ["x", "like"], ["c"], name="cast_like"),
             helper.make_node("Cast", ["c"], ["y"], name="back", to=FLOAT)]
    check(_model(nodes, opset_for("CastLike", revision), inits=[like]), [randn(2, 3) * 3])


@pytest.mark.parametrize("revision,case", cases("CastLike", ["scalar_to_input_type", "saturate"]))
def test_cast_like_runtime_target(revision, case):
    # the dynamo exporter's pattern: a constant cast to the type of a data tensor, then used with it
    attrs = {"saturate": 1} if case == "saturate" and revision >= 19 else {}
    nodes = [helper.make_node("CastLike", ["k", "x"], ["kx"], name="cast_like", **attrs),
             helper.make_node("Mul", ["x", "kx"], ["y"], name="scale")]
    model = _model(nodes, opset_for("CastLike", revision), x_shape=("N", 3), inits=[init("k", np.float64(2.5))])
    for batch in (1, 4):
        twin = check(model, [randn(batch, 3, seed=batch)])
    module = dict(twin.module.named_modules())[next(n.name for n in twin.clean_graph.graph.nodes if n.op == "CastLike")]
    assert not isinstance(module, CastToTypeOf)


@pytest.mark.parametrize("revision,case", cases("CastLike", ["type_known_at_run_time_only"]))
def test_cast_like_target_type_unknown_at_build_time(revision, case):
    # A declared value_info stops shape inference, so the type of 'n' stays unknown to the builder.
    nodes = [helper.make_node("Neg", ["i"], ["n"], name="neg"),
             helper.make_node("CastLike", ["x", "n"], ["c"], name="cast_like"),
             helper.make_node("Cast", ["c"], ["y"], name="back", to=FLOAT)]
    ints = helper.make_tensor_value_info("i", I64, [2, 3])
    model = _model(nodes, opset_for("CastLike", revision), extra_inputs=[ints])
    model.graph.value_info.append(helper.make_tensor_value_info("c", I64, [2, 3]))
    twin = check(model, [randn(2, 3) * 3, np.arange(6, dtype=np.int64).reshape(2, 3)])
    assert any(isinstance(m, CastToTypeOf) for m in twin.module.modules())
    assert twin.forward_declared(torch.full((2, 3), 1.7), torch.zeros(2, 3, dtype=torch.int64))[0].eq(1).all()


@pytest.mark.parametrize("like_type", [TensorProto.BFLOAT16, TensorProto.UINT32, TensorProto.STRING])
def test_cast_like_refuses_targets_the_twin_cannot_compute_in(like_type):
    like = helper.make_tensor_value_info("like", like_type, [1])
    node = helper.make_node("CastLike", ["x", "like"], ["y"], name="odd_like")
    model = _model([node], 21, out_type=like_type, extra_inputs=[like])
    with pytest.raises(UnsupportedOpError, match=r"CastLike \(opset 21\) at node 'odd_like'.*(type|dtype)"):
        check_twin(model)

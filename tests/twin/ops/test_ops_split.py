"""Split at every revision (2, 11, 13, 18): attribute sizes, input sizes, equal parts, num_outputs."""

import numpy as np
import pytest
from onnx import TensorProto, helper

from dmbp_onnx.errors import UnsupportedOpError
from ops_testlib import any_float, cases, check, float_input, init, make_model, opset_for, randn


def _split_model(revision: int, shape, outputs: int, sizes=None, runtime_sizes: bool = False, **attrs):
    """One Split node with ``outputs`` graph outputs; ``sizes`` as attribute (< 13) or input."""
    names, inits, inputs = ["x"], [], [float_input("x", shape)]
    if sizes is not None and revision < 13:
        attrs["split"] = sizes
    elif sizes is not None and runtime_sizes:
        names.append("s")
        inputs.append(helper.make_tensor_value_info("s", TensorProto.INT64, [len(sizes)]))
    elif sizes is not None:
        names.append("s")
        inits.append(init("s", np.asarray(sizes, np.int64)))
    outs = [f"y{k}" for k in range(outputs)]
    node = helper.make_node("Split", names, outs, name="split_node", **attrs)
    return make_model([node], inputs, [any_float(o) for o in outs], inits, opset=opset_for("Split", revision))


CASES = {
    "sizes": dict(shape=(2, 6, 4), outputs=3, sizes=[1, 2, 3], axis=1),
    "equal": dict(shape=(2, 6, 4), outputs=3, axis=1),
    "default_axis": dict(shape=(4, 3), outputs=2),
    "negative_axis": dict(shape=(2, 3, 5), outputs=2, sizes=[2, 3], axis=-1),
    "zero_size_part": dict(shape=(2, 5), outputs=3, sizes=[2, 0, 3], axis=1),
}


@pytest.mark.parametrize("revision,case", cases("Split", CASES))
def test_split(revision, case):
    spec = dict(CASES[case])
    if revision < 11 and spec.get("axis", 0) < 0:
        spec["axis"] += len(spec["shape"])
    check(_split_model(revision, **spec))


@pytest.mark.parametrize("revision,case", cases("Split", ["runtime_sizes"], since=13))
def test_split_sizes_as_a_runtime_input(revision, case):
    model = _split_model(revision, (2, 6), 2, sizes=[4, 2], runtime_sizes=True, axis=1)
    check(model, [randn(2, 6), np.asarray([4, 2], np.int64)])


@pytest.mark.parametrize("revision,case", cases("Split", ["even", "uneven"], since=18))
def test_split_num_outputs(revision, case):
    length = 8 if case == "even" else 7  # 7 into 4: parts of 2, 2, 2 and 1
    check(_split_model(revision, (3, length), 4, axis=1, num_outputs=4))


@pytest.mark.parametrize("revision,case", cases("Split", ["num_outputs_and_split"], since=18))
def test_split_refuses_num_outputs_with_sizes(revision, case):
    with pytest.raises(UnsupportedOpError, match="num_outputs"):
        check(_split_model(revision, (2, 6), 2, sizes=[3, 3], axis=1, num_outputs=2))

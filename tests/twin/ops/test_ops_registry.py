"""The registry covers every op (and every opset 7-23 revision) the twin promises."""

import onnx
import pytest

import dmbp_onnx.twin.build  # noqa: F401  (registers the converters)
from dmbp_onnx.twin.registry import registered_ops

PROMISED = """
Conv ConvTranspose Gemm MatMul Add Sub Mul Div Neg Max Min Relu LeakyRelu PRelu Clip MaxPool AveragePool
GlobalAveragePool GlobalMaxPool ReduceMean ReduceMax ReduceSum BatchNormalization Concat Flatten Reshape
Transpose Squeeze Unsqueeze Pad Resize Shape Gather Slice Cast ConstantOfShape Range Softmax LogSoftmax
Sigmoid Tanh Identity Dropout Constant Expand CastLike
""".split()


@pytest.mark.parametrize("op", PROMISED)
def test_every_revision_of_opset_7_to_23_is_registered(op):
    wanted = set()
    for opset in range(7, 24):
        try:
            wanted.add(onnx.defs.get_schema(op, opset).since_version)
        except onnx.defs.SchemaError:
            continue
    assert wanted and wanted <= set(registered_ops().get(op, [])), f"{op}: missing {wanted - set(registered_ops()[op])}"


def test_upsample_revisions():
    assert {7, 9} <= set(registered_ops()["Upsample"])


def test_registered_revisions_are_real_schema_revisions():
    for op, versions in registered_ops().items():
        for version in versions:
            assert onnx.defs.get_schema(op, version).since_version == version, (op, version)

"""Generate a corpus of hostile or broken ONNX files, each with the error it must raise.

Run ``python tests/hostile/make_corpus.py DIR`` to write the corpus into ``DIR`` (one
subfolder per case); the test builds it in a temporary folder. Every builder takes a
fresh folder and returns ``(source, load kwargs)``; a ``secret.txt`` lies next to the
case folders so tests can check it is never read.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from dmbp_onnx.errors import ExternalDataError, ModelLoadError, UnsupportedModelError, UnsupportedOpError

SECRET = "secret.txt"


@dataclass(frozen=True)
class Case:
    """One hostile file: how to build it, the error class and a regex its message matches."""

    name: str
    build: Callable[[Path], tuple[object, dict]]
    error: type
    match: str


def _x(shape=("N", 3, 4, 4), elem=TensorProto.FLOAT, name="x"):
    return helper.make_tensor_value_info(name, elem, list(shape))


def _model(nodes, inputs=None, outputs=None, inits=(), opsets=(("", 17),), ir=10):
    graph = helper.make_graph(
        list(nodes), "hostile", list(inputs or [_x()]), list(outputs or [_x(name="y")]), list(inits)
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = ir
    return model


def _relu_model():
    return _model([helper.make_node("Relu", ["x"], ["y"], name="relu")])


def _conv_model():
    weight = numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "w")
    return _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], inits=[weight])


def _write(folder: Path, model_or_bytes, name="model.onnx") -> Path:
    path = folder / name
    data = model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
    path.write_bytes(data)
    return path


def _file(make: Callable[[], object]) -> Callable[[Path], tuple[object, dict]]:
    return lambda folder: (_write(folder, make()), {})


def _external(location: str, data_file: str | None = None, length: int = 36, offset: int = 0):
    """A Conv model whose weight lives in external data at ``location``."""

    def build(folder: Path):
        model = _conv_model()
        weight = model.graph.initializer[0]
        weight.ClearField("raw_data")
        del weight.float_data[:]
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
        if data_file is not None:
            (folder / data_file).write_bytes(np.ones(9, np.float32).tobytes())
        return _write(folder, model), {}

    return build


def _symlink_escape(folder: Path):
    build = _external("weights.bin")
    path, kwargs = build(folder)
    os.symlink(folder.parent / SECRET, folder / "weights.bin")
    return path, kwargs


def _external_as_bytes(folder: Path):
    path, _ = _external("weights.bin", data_file="weights.bin")(folder)
    return path.read_bytes(), {}


def _huge_initializer():
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**20, 2**20, 4, 1])
    tensor.raw_data = b"\x00" * 16
    return _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], inits=[tensor])


def _size_mismatch():
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, 3, 1, 1])
    tensor.raw_data = b"\x00" * 8
    return _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], inits=[tensor])


def _negative_dims():
    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[3, -3, 1, 1])
    return _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], inits=[tensor])


def _branch(name):
    return helper.make_graph(
        [helper.make_node("Identity", ["x"], [f"{name}_out"])], name, [], [_x(name=f"{name}_out")]
    )


def _if():
    cond = numpy_helper.from_array(np.array(True), "cond")
    node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=_branch("a"), else_branch=_branch("b"))
    return _model([node], inits=[cond])


def _loop():
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Relu", ["v_in"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), _x(name="v_in")],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), _x(name="v_out")],
    )  # fmt: skip
    inits = [numpy_helper.from_array(np.array(2, np.int64), "trip"), numpy_helper.from_array(np.array(True), "c")]
    return _model([helper.make_node("Loop", ["trip", "c", "x"], ["y"], name="loop", body=body)], inits=inits)


def _scan():
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "e"], ["s_out"]), helper.make_node("Identity", ["s_out"], ["o"])],
        "body",
        [_x((3, 4, 4), name="s_in"), _x((3, 4, 4), name="e")],
        [_x((3, 4, 4), name="s_out"), _x((3, 4, 4), name="o")],
    )
    init = numpy_helper.from_array(np.zeros((3, 4, 4), np.float32), "s0")
    node = helper.make_node("Scan", ["s0", "x"], ["s", "y"], name="scan", body=body, num_scan_inputs=1)
    return _model([node], outputs=[_x((3, 4, 4), name="s"), _x(name="y")], inits=[init])


def _shape_bomb():
    dims = numpy_helper.from_array(np.array([1, 3, 2**20, 2**20], np.int64), "dims")
    return _model(
        [helper.make_node("ConstantOfShape", ["dims"], ["bomb"], name="fill"),
         helper.make_node("Add", ["x", "bomb"], ["y"], name="add")],
        inits=[dims],
    )  # fmt: skip


def _functions(depth: int, recursive: bool = False):
    """Local functions F0..F{depth-1}, each calling the previous one twice (2**depth Relus)."""
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("local", 1)]
    functions = []
    for k in range(depth):
        callee = f"F{k if recursive else k - 1}"
        calls = [helper.make_node(callee, [a], [b], domain="local") for a, b in (("a", "t"), ("t", "b"))]
        nodes = calls if k or recursive else [helper.make_node("Relu", ["a"], ["b"])]
        functions.append(helper.make_function("local", f"F{k}", ["a"], ["b"], nodes, opset_imports=opsets))
    top = helper.make_node(f"F{depth - 1}", ["x"], ["y"], name="top", domain="local")
    model = _model([top], opsets=(("", 17), ("local", 1)))
    model.functions.extend(functions)
    return model


def _sparse():
    values = numpy_helper.from_array(np.ones(2, np.float32), "s")
    indices = numpy_helper.from_array(np.array([0, 5], np.int64), "s_idx")
    model = _model([helper.make_node("Add", ["x", "s"], ["y"], name="add")])
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [3 * 2**30]))
    return model


def _nan_weights():
    weight = np.ones((3, 3, 1, 1), np.float32)
    weight[1, 2, 0, 0] = np.nan
    return _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], inits=[numpy_helper.from_array(weight, "w")]
    )


def _inf_constant():
    value = numpy_helper.from_array(np.array([1.0, np.inf, 2.0], np.float32).reshape(1, 3, 1, 1), "v")
    return _model(
        [helper.make_node("Constant", [], ["c"], name="const", value=value),
         helper.make_node("Mul", ["x", "c"], ["y"], name="mul")]
    )  # fmt: skip


def _tiny_limit(folder: Path):
    return _write(folder, _conv_model()), {"max_bytes": 64}


def _stripped(field: str):
    def make():
        model = _relu_model()
        model.ClearField(field)
        return model

    return make


def _garbage(seed: int):
    return lambda: np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()


CASES = [
    Case("truncated", _file(lambda: _conv_model().SerializeToString()[:-40]), ModelLoadError, "truncated"),
    Case("truncated_half", _file(lambda: _nan_weights().SerializeToString()[:60]), ModelLoadError, "truncated"),
    Case("random_bytes", _file(_garbage(0)), ModelLoadError, "not a valid ONNX|not an ONNX"),
    Case("random_bytes_2", _file(_garbage(1)), ModelLoadError, "not a valid ONNX|not an ONNX"),
    Case("wrong_magic_png", _file(lambda: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8), ModelLoadError, "ONNX"),
    Case("text_file", _file(lambda: b'{"model": "resnet", "layers": [1, 2, 3]}\n' * 20), ModelLoadError, "ONNX"),
    Case("empty_file", _file(lambda: b""), ModelLoadError, "empty"),
    Case("no_ir_version", _file(_stripped("ir_version")), ModelLoadError, "IR version"),
    Case("no_graph", _file(_stripped("graph")), ModelLoadError, "no graph"),
    Case("missing_opset_import", _file(_stripped("opset_import")), ModelLoadError, "no opset import"),
    Case("empty_graph", _file(lambda: _model([])), ModelLoadError, "no nodes"),
    Case("no_inputs", _file(lambda: _model([helper.make_node("Constant", [], ["y"], name="c",
         value=numpy_helper.from_array(np.ones((1, 3, 4, 4), np.float32)))], inputs=[_x(name="dummy")],
         inits=[numpy_helper.from_array(np.ones(1, np.float32), "dummy")])), ModelLoadError, "no inputs"),
    Case("cycle", _file(lambda: _model([helper.make_node("Add", ["x", "b"], ["a"], name="add_a"),
         helper.make_node("Relu", ["a"], ["b"], name="relu_b"),
         helper.make_node("Identity", ["a"], ["y"], name="out")])),
         ModelLoadError, "cycle through node '(add_a|relu_b|out)'"),
    Case("dangling_input", _file(lambda: _model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")])),
         ModelLoadError, "node 'add' \\(Add\\) reads tensor 'ghost'"),
    Case("unproduced_output", _file(lambda: _model([helper.make_node("Relu", ["x"], ["r"], name="relu")])),
         ModelLoadError, "graph output 'y' is not produced"),
    Case("duplicate_tensor_output", _file(lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="r1"),
         helper.make_node("Neg", ["x"], ["y"], name="r2")])), ModelLoadError, "tensor 'y' is produced twice"),
    Case("duplicate_graph_output", _file(lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="r")],
         outputs=[_x(name="y"), _x(name="y")])), ModelLoadError, "duplicate graph output 'y'"),
    Case("duplicate_graph_input", _file(lambda: _model([helper.make_node("Add", ["x", "x"], ["y"], name="add")],
         inputs=[_x(), _x()])), ModelLoadError, "duplicate graph input 'x'"),
    Case("overwrite_input", _file(lambda: _model([helper.make_node("Relu", ["x"], ["x"], name="relu"),
         helper.make_node("Relu", ["x"], ["y"], name="relu2")])), ModelLoadError, "overwrites .*'x'"),
    Case("external_dotdot", _external(f"../{SECRET}"), ExternalDataError, "escapes the model's folder"),
    Case("external_symlink", _symlink_escape, ExternalDataError, "escapes the model's folder"),
    Case("external_absolute", _external("/etc/passwd"), ExternalDataError, "absolute path"),
    Case("external_missing", _external("nowhere.bin"), ExternalDataError, "'nowhere.bin' does not exist"),
    Case("external_short", _external("w.bin", "w.bin", length=36, offset=8), ExternalDataError, "past the end"),
    Case("external_wrong_length", _external("w.bin", "w.bin", length=20), ExternalDataError, "declares 36"),
    Case("external_from_bytes", _external_as_bytes, ExternalDataError, "needs a file path"),
    Case("huge_initializer", _file(_huge_initializer), ModelLoadError, "initializer 'w' .*more than 2\\*\\*31"),
    Case("huge_input_shape", _file(lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
         inputs=[_x((1, 3, 100000, 100000))])), ModelLoadError, "graph input 'x' .*more than 2\\*\\*31"),
    Case("huge_value_info", _file(lambda: _with_value_info(_relu_model(), (4096, 4096, 4096))),
         ModelLoadError, "value_info 'y' .*more than 2\\*\\*31"),
    Case("constant_of_shape_bomb", _file(_shape_bomb), ModelLoadError,
         "inferred shape of 'bomb' .*more than 2\\*\\*31"),
    Case("raw_size_mismatch", _file(_size_mismatch), ModelLoadError, "initializer 'w' .*stores 8 bytes"),
    Case("negative_dims", _file(_negative_dims), ModelLoadError, "initializer 'w' has a negative dimension"),
    Case("control_flow_if", _file(_if), UnsupportedOpError, "If .*'branch'.*control flow"),
    Case("control_flow_loop", _file(_loop), UnsupportedOpError, "Loop .*'loop'.*control flow"),
    Case("control_flow_scan", _file(_scan), UnsupportedOpError, "Scan .*'scan'.*control flow"),
    Case("custom_domain", _file(lambda: _model([helper.make_node("FancyConv", ["x"], ["y"], name="fc",
         domain="com.evil")], opsets=(("", 17), ("com.evil", 1)))), UnsupportedOpError, "FancyConv.*com.evil"),
    Case("domain_not_imported", _file(lambda: _model([helper.make_node("FancyConv", ["x"], ["y"], name="fc",
         domain="com.evil")])), ModelLoadError, "node 'fc' \\(FancyConv\\) uses domain 'com.evil'"),
    Case("mismatched_opset_imports", _file(lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="r")],
         opsets=(("", 17), ("ai.onnx", 13)))), ModelLoadError, "imported twice"),
    Case("opset_from_future", _file(lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="r")],
         opsets=(("", 999),))), UnsupportedModelError, "opset 999"),
    Case("unknown_op", _file(lambda: _model([helper.make_node("Frobnicate", ["x"], ["y"], name="frob")])),
         ModelLoadError, "Frobnicate"),
    Case("wrong_arity", _file(lambda: _model([helper.make_node("Conv", ["x"], ["y"], name="conv")])),
         ModelLoadError, "onnx checker"),
    Case("int_input", _file(lambda: _model([helper.make_node("Cast", ["x"], ["y"], name="cast", to=1)],
         inputs=[_x(elem=TensorProto.INT64)])), UnsupportedModelError, "graph input 'x' has type INT64"),
    Case("zero_size_dim", _file(lambda: _model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
         inputs=[_x((1, 0, 4, 4))])), ModelLoadError, "graph input 'x' has a zero-size dimension"),
    Case("function_bomb", _file(lambda: _functions(40)), ModelLoadError, "more than 1000000 nodes"),
    Case("recursive_function", _file(lambda: _functions(1, recursive=True)), ModelLoadError,
         "'local::F0' calls itself"),
    Case("sparse_initializer", _file(_sparse), UnsupportedModelError, "sparse initializer 's'"),
    Case("nan_weights", _file(_nan_weights), ModelLoadError, "initializer 'w' holds 1 non-finite"),
    Case("inf_constant", _file(_inf_constant), ModelLoadError, "node 'const' \\(Constant\\) holds 1 non-finite"),
    Case("over_size_limit", _tiny_limit, ModelLoadError, "more than the limit 64"),
    Case("missing_file", lambda folder: (folder / "absent.onnx", {}), ModelLoadError, "no such model file"),
    Case("directory", lambda folder: (folder, {}), ModelLoadError, "no such model file"),
]  # fmt: skip


def _with_value_info(model: onnx.ModelProto, shape) -> onnx.ModelProto:
    model.graph.value_info.append(_x(shape, name="y"))
    return model


def build_corpus(root: Path) -> dict[str, tuple[object, dict]]:
    """Write every case under ``root`` (one folder each) and return ``name -> (source, kwargs)``.

    ``root / secret.txt`` is written too: no load may ever read it.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / SECRET).write_text("the model must never read this file\n")
    built = {}
    for case in CASES:
        folder = root / case.name
        folder.mkdir()
        built[case.name] = case.build(folder)
    return built


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_corpus.py DIR (a new or empty folder)")
    if Path(sys.argv[1]).exists() and any(Path(sys.argv[1]).iterdir()):
        raise SystemExit(f"{sys.argv[1]} is not empty")
    for name, (source, kwargs) in build_corpus(Path(sys.argv[1])).items():
        print(name, source if isinstance(source, Path) else f"<{len(source)} bytes>", kwargs or "")

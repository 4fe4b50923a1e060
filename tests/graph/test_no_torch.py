"""The graph side (dmbp_onnx/graph) never imports torch."""

import ast
from pathlib import Path

import dmbp_onnx.graph

GRAPH = Path(dmbp_onnx.graph.__file__).parent


def test_graph_modules_do_not_import_torch():
    for path in sorted(GRAPH.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not [n for n in names if n.split(".")[0] == "torch"], f"{path.name} imports torch"

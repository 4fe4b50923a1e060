"""Helpers shared by the converter recipes (needs only numpy and onnx).

Every recipe runs in its own framework's virtual environment, so this module
must not import anything from ``dmbp_onnx`` or any deep-learning framework.
"""

from __future__ import annotations

import argparse
import collections
import random
from pathlib import Path

import numpy as np
import onnx

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "foreign"
MAX_BYTES = 200_000


def parse_args(description: str) -> argparse.Namespace:
    """Command line shared by all recipes: ``--out-dir`` and ``--seed``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where <name>.onnx/.npz go")
    parser.add_argument("--seed", type=int, default=0, help="seed for weights and the input")
    return parser.parse_args()


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's and numpy's global generators; return a fresh numpy Generator."""
    random.seed(seed)
    np.random.seed(seed)
    return np.random.default_rng(seed)


def op_histogram(model: onnx.ModelProto) -> collections.Counter:
    """Count nodes of the main graph by ``domain.op`` (plain ``op`` for ai.onnx)."""
    return collections.Counter(
        f"{n.domain}.{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
        for n in model.graph.node
    )


def save_fixture(
    name: str,
    model: onnx.ModelProto,
    arrays: dict[str, np.ndarray],
    out_dir: Path,
) -> Path:
    """Write ``<name>.onnx`` (weights inline) and ``<name>.npz`` and print what was emitted.

    Parameters
    ----------
    name : str
        File stem.
    model : onnx.ModelProto
        The exporter's model, saved unchanged except that external data is inlined.
    arrays : dict of str to numpy.ndarray
        At least ``input`` and ``output`` (the source framework's own output).
    out_dir : pathlib.Path
        Target folder (created if missing).

    Returns
    -------
    pathlib.Path
        Path of the written ``.onnx`` file.
    """
    if "input" not in arrays or "output" not in arrays:
        raise ValueError("a fixture needs at least the arrays 'input' and 'output'")
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    onnx.save_model(model, onnx_path, save_as_external_data=False)
    np.savez_compressed(out_dir / f"{name}.npz", **arrays)
    size = onnx_path.stat().st_size
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    print(f"{onnx_path.name}: {size} bytes, ir_version {model.ir_version}, opsets {opsets}")
    print(f"  producer: {model.producer_name} {model.producer_version}")
    for inp in model.graph.input:
        print(f"  input  {inp.name}: {_shape(inp)}")
    for out in model.graph.output:
        print(f"  output {out.name}: {_shape(out)}")
    print(f"  initializers: {len(model.graph.initializer)}")
    for op, count in sorted(op_histogram(model).items()):
        print(f"  {count:3d} x {op}")
    if size > MAX_BYTES:
        raise SystemExit(f"{onnx_path} is {size} bytes, over the {MAX_BYTES}-byte fixture budget")
    return onnx_path


def _shape(value: onnx.ValueInfoProto) -> list:
    """Declared shape of a value, dynamic dims by name (or '?')."""
    if not value.type.HasField("tensor_type"):
        return [value.type.WhichOneof("value")]
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
        for d in value.type.tensor_type.shape.dim
    ]

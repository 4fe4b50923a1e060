"""``import dmbp_onnx`` and ``dmbp-onnx inspect`` work where torch cannot be imported.

The torch side of the public API (``load``, ``Twin``, ``validate``, the methods, ...) is
resolved lazily on first access; the CLI parser and ``inspect`` never need torch.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import dmbp_onnx

FIXTURE = Path(__file__).parent / "fixtures" / "foreign" / "keras_tf_cnn.onnx"

# Runs in a fresh interpreter: a meta-path finder blocks (and records) every torch import,
# then the package, the CLI parser and ``inspect --json`` run; the script prints one JSON line.
SCRIPT = textwrap.dedent(
    """
    import contextlib, importlib.abc, io, json, sys

    attempts = []

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                attempts.append(name)
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, BlockTorch())
    assert "torch" not in sys.modules

    import dmbp_onnx
    import dmbp_onnx.cli
    dmbp_onnx.cli.build_parser()
    attempts_before_inspect = list(attempts)

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = dmbp_onnx.cli.main(["inspect", sys.argv[1], "--json"])

    try:
        dmbp_onnx.load
        load_error = None
    except ImportError as exc:
        load_error = exc.name

    print(json.dumps({
        "rc": rc,
        "info": json.loads(out.getvalue()),
        "attempts_before_inspect": attempts_before_inspect,
        "torch_modules": sorted(m for m in sys.modules if m.split(".")[0] == "torch"),
        "load_error": load_error,
        "all": sorted(dmbp_onnx.__all__),
        "dir": sorted(dir(dmbp_onnx)),
    }))
    """
)


def _run_without_torch() -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(FIXTURE)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_and_inspect_without_torch():
    result = _run_without_torch()
    # importing the package and building the CLI parser never even tries torch
    assert result["attempts_before_inspect"] == []
    assert result["torch_modules"] == []
    # inspect succeeds and describes the model; only the twin is left out
    assert result["rc"] == 0
    info = result["info"]
    assert info["inputs"][0]["layout"] == "NHWC"
    assert info["ops"]["Conv"] == 3
    assert info["eligibility"]["eligible"] is True
    assert info["twin"]["ok"] is None and "torch" in info["twin"]["error"]
    assert info["mask_sites"] is None
    # the torch side fails only when asked for, naming torch
    assert result["load_error"] == "torch"
    # __all__ and dir() list the lazy names without importing them
    assert set(result["all"]) <= set(result["dir"])
    assert {"load", "Twin", "validate", "DMBP", "Gradient", "from_torch"} <= set(result["all"])


def test_import_does_not_load_torch_even_when_installed():
    code = (
        "import sys, dmbp_onnx, dmbp_onnx.cli; dmbp_onnx.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_lazy_names_resolve_to_the_torch_side():
    from dmbp_onnx.methods import DMBP, METHODS, Gradient
    from dmbp_onnx.twin.from_torch import from_torch
    from dmbp_onnx.twin.twin import Twin, load
    from dmbp_onnx.validate import ValidationReport, validate

    assert dmbp_onnx.load is load and dmbp_onnx.Twin is Twin
    assert dmbp_onnx.DMBP is DMBP and dmbp_onnx.Gradient is Gradient and dmbp_onnx.METHODS is METHODS
    assert dmbp_onnx.from_torch is from_torch
    assert dmbp_onnx.ValidationReport is ValidationReport
    # the function, not the subpackage of the same name (which is imported by now)
    assert dmbp_onnx.validate is validate and callable(dmbp_onnx.validate)
    for name in dmbp_onnx.__all__:
        assert getattr(dmbp_onnx, name) is not None
        assert name in dir(dmbp_onnx)


def test_every_public_method_name_is_exported_at_the_top():
    from dmbp_onnx import methods

    assert set(methods.__all__) - {"Method"} <= set(dmbp_onnx.__all__)
    assert {cls.__name__ for cls in methods.METHODS.values()} <= set(dmbp_onnx.__all__)


def test_unknown_attribute_is_an_attribute_error():
    try:
        dmbp_onnx.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")

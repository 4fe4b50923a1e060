"""Gemm and MatMul at every registered revision."""

import pytest
from torch import nn

from ops_testlib import cases, check, init, randn, single

GEMM = {
    "plain": dict(attrs={}, a=(3, 4), b=(4, 5), c=None),
    "transB_bias": dict(attrs={"transB": 1}, a=(3, 4), b=(5, 4), c=(5,)),
    "alpha_beta": dict(attrs={"alpha": 0.5, "beta": 2.0}, a=(3, 4), b=(4, 5), c=(1, 5)),
    "transA": dict(attrs={"transA": 1}, a=(4, 3), b=(4, 5), c=(5,)),
    "full_c": dict(attrs={}, a=(3, 4), b=(4, 5), c=(3, 5)),
    "column_c": dict(attrs={"beta": 0.5}, a=(3, 4), b=(4, 5), c=(3, 1)),
    "scalar_c": dict(attrs={}, a=(3, 4), b=(4, 5), c=()),
}


@pytest.mark.parametrize("revision,case", cases("Gemm", GEMM))
def test_gemm(revision, case):
    spec = GEMM[case]
    if spec["c"] is None and revision < 11:
        spec = dict(spec, c=(5,))
    inits = [init("b", randn(*spec["b"], seed=1))]
    if spec["c"] is not None:
        inits.append(init("c", randn(*spec["c"], seed=2)))
    model = single("Gemm", revision, [("a", spec["a"])], None, inits, **spec["attrs"])
    twin = check(model)
    linear = isinstance(twin.module.get_submodule("gemm_node"), nn.Linear)
    assert linear == (case in ("plain", "transB_bias", "alpha_beta", "scalar_c"))


@pytest.mark.parametrize("revision,case", cases("Gemm", ["runtime_b"], since=11))
def test_gemm_runtime_operands(revision, case):
    model = single("Gemm", revision, [("a", (3, 4)), ("b", (5, 4))], None, transB=1, alpha=2.0)
    check(model)


@pytest.mark.parametrize("revision,case", cases("MatMul", ["2d", "batched", "vector", "runtime", "nd_const"]))
def test_matmul(revision, case):
    shapes = {"2d": (3, 4), "batched": (2, 3, 4), "vector": (4,), "runtime": (2, 3, 4), "nd_const": (2, 3, 4)}
    if case == "runtime":
        model = single("MatMul", revision, [("a", (2, 3, 4)), ("b", (2, 4, 5))], None)
    else:
        b = randn(2, 4, 5, seed=1) if case == "nd_const" else randn(4, 5, seed=1)
        model = single("MatMul", revision, [("a", shapes[case])], None, [init("b", b)])
    twin = check(model)
    assert isinstance(twin.module.get_submodule("matmul_node"), nn.Linear) == (case in ("2d", "batched", "vector"))

"""The per-model checks, run in this process (the runner tests cover the child process)."""

from pathlib import Path

import numpy as np
import pytest
import torch

import dmbp_onnx.methods
from dmbp_onnx.audit.checks import audit_model, check_names
from dmbp_onnx.audit.config import AuditConfig

FAST = AuditConfig(samples=2, explain_iterations=30)
FOREIGN = Path(__file__).parents[1] / "fixtures" / "foreign"


def _by_name(results):
    return {r.name: r for r in results}


def _batch(seed=0, n=2):
    return np.random.default_rng(seed).standard_normal((n, 3, 8, 8)).astype(np.float32)


def test_good_model_passes_every_check_in_order(net_path):
    seen = []
    results = audit_model(net_path, FAST, on_start=seen.append)
    assert seen == check_names(FAST) == [r.name for r in results]
    statuses = {r.name: r.status for r in results}
    assert statuses == {**{n: "pass" for n in seen}, "validate-given-npy": "skip"}, results
    checks = _by_name(results)
    assert len(checks["validate-seeded-2"].details["runs"]) == 2
    smoke = checks["dmbp-smoke"].details
    assert smoke["iterations"] == 30 and smoke["batch"] == 1
    assert all(p > 0 and p > n for p, n in zip(smoke["positive_sum"], smoke["negative_sum"]))
    assert all(d < 1e-6 for d in smoke["gradient_max_abs_difference"].values())
    assert "no net.input.npy or net.npz" in checks["validate-given-npy"].message


def test_given_npy_inputs_and_expected_outputs(net_path):
    from dmbp_onnx import load

    x = _batch()
    with torch.no_grad():
        y = load(net_path)(torch.from_numpy(x)).numpy()
    np.save(net_path.with_name("net.input.npy"), x)
    np.save(net_path.with_name("net.expected.npy"), y)
    checks = _by_name(audit_model(net_path, FAST))
    given = checks["validate-given-npy"]
    assert given.status == "pass" and "net.input.npy + net.expected.npy [2, 3, 8, 8]" in given.message
    assert checks["dmbp-smoke"].details["batch"] == 2 and checks["dmbp-smoke"].status == "pass"

    np.save(net_path.with_name("net.expected.npy"), y + 1.0)
    given = _by_name(audit_model(net_path, AuditConfig(samples=0, explain=False)))["validate-given-npy"]
    assert given.status == "fail" and given.message.startswith("mismatch on net.input.npy + net.expected.npy")
    assert "the expected outputs differ from both" in given.message


def test_npz_fixture_and_broken_given_files(net_path):
    np.savez(net_path.with_name("net.npz"), input=_batch())
    config = AuditConfig(samples=0, explain=False)
    assert _by_name(audit_model(net_path, config))["validate-given-npy"].status == "pass"
    net_path.with_name("net.npz").write_bytes(b"not an archive")
    given = _by_name(audit_model(net_path, config))["validate-given-npy"]
    assert given.status == "fail" and "cannot read 'net.npz'" in given.message
    np.save(net_path.with_name("net.input.npy"), _batch()[:, :2])
    given = _by_name(audit_model(net_path, config))["validate-given-npy"]
    assert given.status == "fail"
    assert given.message == "input 'x' has shape [2, 2, 8, 8], the model declares [N, 3, 8, 8]"


def test_ineligible_model_fails_unless_allowed(sigmoid_path):
    checks = _by_name(audit_model(sigmoid_path, FAST))
    assert checks["validate-seeded-2"].status == "pass"
    assert checks["eligibility"].status == "fail"
    assert "squash (Sigmoid)" in checks["eligibility"].message
    assert checks["eligibility"].details["offending"] == [{"node": "squash", "op": "Sigmoid"}]
    assert checks["dmbp-smoke"].status == "skip"

    allowed = _by_name(audit_model(sigmoid_path, FAST.replace(require_eligible=False)))
    assert allowed["eligibility"].status == "skip"
    assert "allowed by require_eligible = false" in allowed["eligibility"].message
    assert allowed["dmbp-smoke"].status == "skip"


def test_unloadable_model_fails_load_and_skips_the_rest(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07garbage" * 10)
    results = audit_model(path, FAST)
    assert results[0].status == "fail" and "ONNX" in results[0].message
    assert [r.status for r in results[1:]] == ["skip"] * 5


def test_explain_off_skips_the_smoke_test(net_path):
    smoke = _by_name(audit_model(net_path, FAST.replace(explain=False, samples=0)))["dmbp-smoke"]
    assert smoke.status == "skip" and smoke.message == "explain is off"


def test_smoke_test_catches_a_broken_invariant(net_path, monkeypatch):
    real = dmbp_onnx.methods.DMBP.attribute

    def flipped(self, x, target=None):
        result = real(self, x, target)
        if self.iterations:
            result.positive = -result.positive.abs() - 1.0
        return result

    monkeypatch.setattr(dmbp_onnx.methods.DMBP, "attribute", flipped)
    smoke = _by_name(audit_model(net_path, FAST.replace(samples=0)))["dmbp-smoke"]
    assert smoke.status == "fail" and "does not sum to more than 0 and than the negative map for image(s) [0]" in smoke.message


def test_masks_that_do_not_move_are_reported_with_the_reason(net_path, monkeypatch):
    real = dmbp_onnx.methods.DMBP.__init__

    def frozen(self, *args, **kwargs):
        real(self, *args, **kwargs)
        self.lr = 0.0  # the masks stay at 1: both maps are the unmasked one

    monkeypatch.setattr(dmbp_onnx.methods.DMBP, "__init__", frozen)
    smoke = _by_name(audit_model(net_path, AuditConfig(samples=0, explain_iterations=3)))["dmbp-smoke"]
    assert smoke.status == "fail" and "after 3 iterations (masks move by about 0.0 per step)" in smoke.message
    assert smoke.details["negative_sum"][0] == smoke.details["positive_sum"][0]


def test_a_bug_of_the_tool_is_an_error_not_a_failure(net_path, monkeypatch):
    import dmbp_onnx.audit.smoke

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(dmbp_onnx.audit.smoke, "dmbp_smoke", broken)
    smoke = _by_name(audit_model(net_path, FAST.replace(samples=0)))["dmbp-smoke"]
    assert smoke.status == "error" and smoke.message == "internal error ZeroDivisionError: boom"
    assert "Traceback" in smoke.details["traceback"]


@pytest.mark.parametrize("samples", [0, 3])
def test_seeded_check_is_named_after_the_sample_count(net_path, samples):
    checks = _by_name(audit_model(net_path, AuditConfig(samples=samples, explain=False)))
    seeded = checks[f"validate-seeded-{samples}"]
    assert seeded.status == ("skip" if samples == 0 else "pass")
    if samples:
        assert [r["seed"] for r in seeded.details["runs"]] == [0, 1, 2]


@pytest.mark.parametrize(
    "name",
    [
        "torch_legacy_cnn", "torch_legacy_bn_cnn", "torch_dynamo_cnn",
        "paddle_cnn", "keras_tf_cnn", "keras3_torch_cnn", "jax_flax_cnn", "jax_lax_cnn",
    ],
)  # fmt: skip
def test_every_check_passes_on_the_foreign_cnn_fixtures(name):
    checks = audit_model(FOREIGN / f"{name}.onnx", AuditConfig(samples=1))
    assert [c.status for c in checks] == ["pass"] * 6, [(c.name, c.message) for c in checks if c.status != "pass"]
    assert checks[-1].details["input"] == f"{name}.npz" and checks[-1].details["batch"] == 2


@pytest.mark.parametrize("declared,rows", [(1, 2), (2, 1)])
def test_smoke_runs_a_fixed_batch_model_at_its_batch_whatever_the_rows(declared, rows):
    from small_models import conv_net

    from dmbp_onnx import load
    from dmbp_onnx.audit.smoke import dmbp_smoke

    model = conv_net()
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    dim.ClearField("dim_param")
    dim.dim_value = declared
    violations, details = dmbp_smoke(load(model), _batch(n=rows), 3, 0)
    assert violations == [] and details["batch"] == declared

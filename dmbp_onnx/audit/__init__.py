"""Audit ONNX models for CI pipelines: ``dmbp-onnx audit`` and its building blocks.

:func:`collect_models` finds the models, :func:`run_audit` checks each in a child
process with a time budget (:mod:`dmbp_onnx.audit.checks` lists the checks), and
:mod:`dmbp_onnx.audit.report` writes the JSON and JUnit reports.
"""

from dmbp_onnx.audit.checks import CheckResult, audit_model, check_names
from dmbp_onnx.audit.config import AuditConfig, load_config
from dmbp_onnx.audit.report import build_report, junit_tree, write_json, write_junit
from dmbp_onnx.audit.runner import ModelResult, collect_models, run_audit

__all__ = [
    "AuditConfig",
    "CheckResult",
    "ModelResult",
    "audit_model",
    "build_report",
    "check_names",
    "collect_models",
    "junit_tree",
    "load_config",
    "run_audit",
    "write_json",
    "write_junit",
]

"""Self-contained HTML reports: one page, images inlined as base64 PNG, no script, no network.

:func:`write_explain_html` renders an explain run (``report.html`` next to ``report.json``);
:func:`write_audit_html` renders an audit report (``dmbp-onnx audit --html PATH``).
"""

from dmbp_onnx.html.audit_page import audit_html, write_audit_html
from dmbp_onnx.html.explain_page import explain_html, write_explain_html

__all__ = ["audit_html", "explain_html", "write_audit_html", "write_explain_html"]

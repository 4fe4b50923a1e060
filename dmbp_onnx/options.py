"""Option values that torch-free code (the command line's parser, dataset job specs) must know.

Each tuple is the key list of a torch-side table; a test keeps the two equal.
"""

from __future__ import annotations

#: DMBP's ``rule`` values, default first: the keys of ``dmbp_onnx.methods.dmbp.method.RULES``.
DMBP_RULES = ("lrp-gamma", "gradient")

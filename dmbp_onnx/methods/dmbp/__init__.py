"""Disentangled Masked Backpropagation: the method (:mod:`.method`), its objectives and mask
parametrisations (:mod:`.objectives`), the optimiser (:mod:`.optimiser`) and the bookkeeping of its
iterates (:mod:`.iterates`). The masked mapping it optimises is :mod:`dmbp_onnx.methods.masked`."""

from dmbp_onnx.methods.dmbp.method import DMBP, PATH_STEPS, PRECISIONS, REGIONS, RULES, auto_lr

__all__ = ["DMBP", "PATH_STEPS", "PRECISIONS", "REGIONS", "RULES", "auto_lr"]

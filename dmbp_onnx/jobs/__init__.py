"""Dataset-scale explain jobs: streaming sources, an exactly-once index, two executors.

``dmbp-onnx explain MODEL DIR_OR_LIST`` with a folder, a glob or a manifest streams the
images through :class:`~dmbp_onnx.jobs.job.ExplainJob` in batches, writes each image's
arrays atomically and appends one row per image to ``index.jsonl``. A rerun skips every
image whose key (image content, model, settings) is already in the index. The same job
runs in-process (:func:`~dmbp_onnx.jobs.run.run_job`) or inside Ray actors
(:mod:`dmbp_onnx.jobs.ray_executor`, the optional ``ray`` extra; never imported here).
"""

from dmbp_onnx.jobs.run import JobSummary, run_job
from dmbp_onnx.jobs.sources import Source, count_sources, iter_sources
from dmbp_onnx.jobs.spec import JobSpec

__all__ = ["JobSpec", "JobSummary", "Source", "count_sources", "iter_sources", "run_job"]

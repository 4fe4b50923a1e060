"""Dataset-scale explain jobs: streaming sources, an exactly-once index, two executors.

``dmbp-onnx explain MODEL DIR_OR_LIST`` with a folder, a glob or a manifest streams the
images through :class:`~dmbp_onnx.jobs.job.ExplainJob` in batches, writes each image's
arrays atomically and appends one row per image to ``index.jsonl``. A rerun skips every
image whose key (image content, model, settings) is already in the index. The same job
runs in-process (:func:`~dmbp_onnx.jobs.run.run_job`) or inside Ray actors
(:mod:`dmbp_onnx.jobs.ray_executor`, the optional ``ray`` extra).
Nothing is imported here, so the CLI parser (:mod:`dmbp_onnx.jobs.command`) stays light.
"""

"""The ONNX side of the pipeline: loading, cleaning and inspecting graphs (no torch here)."""

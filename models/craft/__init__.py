"""CRAFT text detector: ONNX export recipe (see README.md)."""

#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one call on a lent GPU machine (its lease is short):
#   1. the CUDA tests (pytest -m cuda), 2. benchmarks/perf_dmbp.py --device cuda --amp (full mode),
#   3. the method, twin and explain tests with the GPU visible (device "auto" picks CUDA there).
# Run from the repository root. Wheels the machine lacks (onnx-graphsurgeon, zennit, captum) are installed
# from .whl/ when that folder exists; logs and the benchmark's JSON/Markdown go to $OUT (default /tmp/gpu_out).
# Each step has its own time limit so that a slow step cannot eat the next ones.
set -o pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
    python3 -c "import torch, onnx, onnxruntime as ort; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
torch.version.cuda, '| onnx', onnx.__version__, '| onnxruntime', ort.__version__, ort.get_available_providers())"
} 2>&1 | tee "$OUT/gpu.txt"
echo "== CUDA tests"
timeout "${CUDA_TESTS_S:-120}" python3 -m pytest -q -p no:cacheprovider -m cuda -rs \
    tests/methods/test_cuda.py tests/test_validate.py tests/test_device.py 2>&1 | tee "$OUT/cuda_tests.log"
echo "== perf_dmbp on CUDA"
timeout "${PERF_S:-240}" python3 benchmarks/perf_dmbp.py --device cuda --amp --out "$OUT" 2>&1 | tee "$OUT/perf.log"
echo "== method, twin and explain tests with the GPU visible"
timeout "${SUITE_S:-90}" python3 -m pytest -q -p no:cacheprovider -n 12 tests/methods tests/twin tests/test_explain.py \
    2>&1 | tail -40 | tee "$OUT/suite.log"

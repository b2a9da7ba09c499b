#!/usr/bin/env bash
# On a machine with a CUDA GPU: train one codec for a short budget on the GPU, write .tosc
# files there, check that they decode bit-exactly on the CPU, and print images/s.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        (default: a new temporary folder)
#   TOSC_GPU_CHECK_IMAGES=20000  training images (one epoch)
#   TOSC_GPU_CHECK_TEST=2000     test images coded
#
# Exit status: 0 every check passed; 1 a check failed; 2 setup problem (no .venv);
# 3 no CUDA GPU is visible to PyTorch, so nothing was checked.
# The checks themselves are benchmarks/gpu_check.py, which also runs with --device cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
if [ ! -x "$PY" ]; then
    echo "gpu_check: $PY not found; run 'make setup' first" >&2
    exit 2
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    build=$("$PY" -c 'import torch; print(f"torch {torch.__version__}, CUDA build {torch.version.cuda or None}")' 2>/dev/null || echo "torch not importable")
    echo "gpu_check: no CUDA GPU is visible to PyTorch on this machine ($build); nothing was checked (exit 3)" >&2
    exit 3
fi
OUT=${1:-$(mktemp -d -t tosc-gpu-check.XXXXXX)}
echo "gpu_check: outputs in $OUT"
exec env OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" "$PY" benchmarks/gpu_check.py --device cuda --out "$OUT" \
    --images "${TOSC_GPU_CHECK_IMAGES:-20000}" --test "${TOSC_GPU_CHECK_TEST:-2000}"

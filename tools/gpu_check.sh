#!/usr/bin/env bash
# The GPU check of issue #27, in one call (<= 8 minutes on one H100): the quick main job on CUDA in bf16, a resume,
# eval, infer on CUDA vs the CPU, the `cuda` tests, training clips/s and peak memory of stmo-small and
# dstformer-lite at T=243 (fp32 / bf16 / bf16 + compile / fused AdamW vs fastai's Adam), the attention (SDPA)
# backend that runs, and the batch transforms on the GPU vs the CPU. Results: gpu_check.json + gpu_check.md.
#
#   bash tools/gpu_check.sh [OUT_DIR]          # OUT_DIR: default $OUT (the device machine's), else outputs/gpu_check
#   bash tools/gpu_check.sh --fetch-wheels     # on a machine with PyPI: the wheels a bare GPU machine lacks -> .whl/
#
# On a machine without a GPU it prints "no GPU" and exits 0 (tests/test_cuda.py runs it so on CI).
# A GPU machine without this package's dependencies (Python 3.12, its own torch): the wheels in .whl/ (pure Python,
# --no-deps, each pinned to the version requirements.txt tests) are installed to a temporary folder first.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
WHEELS="fastai==2.8.12 fastcore==2.2.41 fastprogress==1.1.6 fasttransform==0.0.5 fastdownload==0.0.8 plum-dispatch==2.9.0
beartype==0.23.1 omegaconf==2.4.0 plotly==7.1.0 cdflib==1.3.16 python-fasthtml==0.14.14 starlette==1.10.0
itsdangerous==2.2.0 python-multipart==0.0.34"

if [ "${1:-}" = "--fetch-wheels" ]; then   # versions: those of the tested lock / the venv they were read from
  mkdir -p .whl
  for w in $WHEELS; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 -d .whl "$w" || exit 1
  done
  ls .whl; exit 0
fi

OUTDIR="${1:-${OUT:-outputs/gpu_check}}"
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  echo "no GPU: torch.cuda.is_available() is false here (or torch is missing); nothing to check"
  exit 0
fi
if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c 'import fastai, omegaconf, fasttransform, plotly' 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/hpe_site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/hpe_site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONHASHSEED=0 MPLBACKEND=Agg
mkdir -p "$OUTDIR"
exec "$PY" benchmarks/gpu_check.py --out "$OUTDIR" --budget "${GPU_CHECK_BUDGET_S:-450}"

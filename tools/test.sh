#!/usr/bin/env bash
# README command (b): set up if needed, then run every default test —
# ruff F, the export/clean sync check, notebook cells (nbdev-test), pytest, and the docs site (tools/docs.sh).
# Slow tests run separately: `nbdev-test --flags slow` and `pytest -m slow`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export PATH="$PWD/.venv/bin:$PATH" PYTHONHASHSEED=0 MPLBACKEND=Agg
echo "== ruff F (undefined names, unused imports): the exported package, tests, tools, benchmarks"
python -m ruff check --quiet --select F --exclude hpe_pretrain/_modidx.py hpe_pretrain tests tools benchmarks
echo "== sync check (first: it takes seconds): nbdev-export && nbdev-clean && git diff --exit-code"
nbdev-export && nbdev-clean && git diff --exit-code -- nbs hpe_pretrain
python tools/readme.py --check
python tools/sidebar.py --check
untracked=$(git ls-files --others --exclude-standard -- nbs hpe_pretrain)
if [ -n "$untracked" ]; then echo "generated files not committed:"; echo "$untracked"; exit 1; fi
echo "== nbdev-test"
OMP_NUM_THREADS=1 nbdev-test --n-workers 2 --timing  # one thread per worker: tiny test models, 2 cores
echo "== pytest"
set +e; pytest -q; rc=$?; set -e
# pytest exits 5 when no test was collected: not a failure of the suite
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
echo "== docs: the Quarto site built from the notebooks, 0 warnings, 0 broken internal links or anchors"
bash tools/docs.sh
echo "all checks passed"

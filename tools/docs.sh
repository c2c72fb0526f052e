#!/usr/bin/env bash
# Build the documentation site from the notebooks (nbdev-docs -> _docs/) and check it: any error or warning line from
# nbdev or Quarto fails, and so does any broken internal link or #anchor (tools/check_links.py).
# Quarto: the one on PATH; else the offline kit beside this checkout (../shared/tools/quarto, ~10 s); else PyPI's
# quarto-cli (downloads Quarto: a machine with ordinary internet). Run from anywhere: bash tools/docs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if ! command -v quarto >/dev/null 2>&1; then
  kit=../shared/tools/quarto/setup.sh; prefix=${QUARTO_PREFIX:-$HOME/.cache/quarto-offline}
  if [ -f "$kit" ]; then bash "$kit" "$prefix" >/dev/null; export PATH="$prefix/bin:$PATH"
  else python -m pip install -q --disable-pip-version-check quarto-cli; fi
fi
echo "== docs: nbdev-docs with $(quarto --version | head -1)"
log=$(mktemp); trap 'rm -f "$log"' EXIT
readme=$(mktemp); cp README.md "$readme"          # nbdev-docs rewrites README.md; ours is tools/readme.py's: keep it
set +e; nbdev-docs >"$log" 2>&1; rc=$?; set -e
cp "$readme" README.md; rm -f "$readme"
if [ "$rc" -ne 0 ] || grep -Eiq '(^|[^a-z])(warn(ing)?|error)[: ]|traceback' "$log"; then
  grep -Ei -B2 -A8 '(^|[^a-z])(warn(ing)?|error)[: ]|traceback' "$log" | head -80
  echo "docs: nbdev-docs exited $rc or printed warnings/errors (above)"; exit 1
fi
python tools/check_links.py _docs

#!/usr/bin/env bash
# Creates .venv (if missing or stale) and installs the pinned lock + the package in ONE pip call,
# so the CPU torch pin in requirements.txt holds (see ../shared/reference/environment.md).
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.hpe_stamp 2>/dev/null)" != "$stamp" ]; then
  echo "== installing into .venv (about 2 minutes)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt -e ".[dev]"
  echo "$stamp" > .venv/.hpe_stamp
fi

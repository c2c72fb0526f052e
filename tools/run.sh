#!/usr/bin/env bash
# README command (a): set up if needed, then run the main job on the embedded synthetic default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/hpe-pretrain fit "$@"

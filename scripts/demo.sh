#!/usr/bin/env bash
# The main job: setup, then the demonstration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/mip4 demo "$@"

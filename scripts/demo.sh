#!/usr/bin/env bash
# The main job: setup, then the roaming demo in network namespaces (`mip4 lab demo`).
# Needs root (network namespaces). Extra arguments go to `mip4 lab demo` (see --help), e.g.
# `--aaa`: a FreeRADIUS decides and the mobile node has only its NAI (docs/aaa.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "demo: the lab builds network namespaces and needs root: sudo bash scripts/demo.sh" >&2
  exit 2
fi
bash scripts/setup.sh
exec .venv/bin/mip4 lab demo "$@"

#!/usr/bin/env bash
# Sets everything up and runs every test: unit tests and the root-only integration tests against
# the real kernel (eBPF). As root, nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
if [[ $(id -u) -ne 0 ]]; then
  echo "warning: not root: the live-kernel integration tests will skip" >&2
fi
ctest --preset default

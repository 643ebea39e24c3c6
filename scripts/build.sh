#!/usr/bin/env bash
# Configures and builds with the default preset (RelWithDebInfo, warnings as errors).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)"

#!/usr/bin/env bash
# Sets everything up and runs the node agent on this host with the bundled default configuration.
# OCSF events go to stdout, logs to stderr; Ctrl-C stops it cleanly. Extra arguments are passed to
# `palisade agent` (e.g. --json /tmp/events.jsonl, --no-store).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
  echo "the agent loads eBPF programs: run as root" >&2
  exit 1
fi
bash scripts/build.sh >&2
exec ./build/cli/palisade agent "$@"

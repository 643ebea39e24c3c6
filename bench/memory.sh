#!/usr/bin/env bash
# Agent resident memory with N live processes tracked (default 10,000), as on docs/benchmarks.md.
#   bash bench/memory.sh [N]     (root; build first with scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
WORK=$(mktemp -d /tmp/palisade-mem.XXXXXX)
BIN=$PWD/build
AGENT_PID=""
cleanup() {
  [[ -n $AGENT_PID ]] && kill -TERM "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  exec 3>&- 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ulimit -u unlimited 2>/dev/null || true

"$BIN/cli/palisade" agent --no-stdout --json "$WORK/events.jsonl" --store "$WORK/events.db" \
  --status-file "$WORK/status.json" --status-interval 2 --log-level warn ${AGENT_ARGS:-} 2>"$WORK/agent.log" &
AGENT_PID=$!
until [[ -s $WORK/status.json ]]; do sleep 0.2; done
sleep 3  # past start-up: the status after the first interval has trimmed the loader's memory
rss() { awk '/^VmRSS/ {print $2}' "/proc/$AGENT_PID/status"; }
idle=$(rss)

# N sleepers, held open until fd 3 closes.
coproc TREE { "$BIN/bench/storm/palisade-idle-tree" "$N"; }
exec 3>&"${TREE[1]}"
read -r ready <&"${TREE[0]}"
[[ $ready == ready ]] || { echo "idle tree failed" >&2; exit 1; }
sleep 5  # let the agent drain every exec and write a status
entries=$(grep -oE '"entries": [0-9]+' "$WORK/status.json" | awk '{print $2}')
loaded=$(rss)
bytes=$(grep -oE "\"bytes\": [0-9]+" "$WORK/status.json" | awk "{print \$2}")
echo "processes held: $N; process table entries: $entries ($((bytes / 1024)) KiB by its own accounting)"
grep -E "^(Anonymous|Private_Dirty|Private_Clean)" /proc/$AGENT_PID/smaps_rollup
echo "agent RSS idle: ${idle} KiB; with $N processes: ${loaded} KiB ($((loaded / 1024)) MiB)"

#!/usr/bin/env bash
# Agent overhead on three storms, measured as on docs/benchmarks.md: each storm runs REPS times
# without and with the agent (full monitoring: all hooks, JSON to a file, the SQLite store),
# interleaved and in rotating order, the workload pinned to CPU 0. Reports the median of the
# per-rep slowdown ratios and the events the agent lost (must be 0).
#   bash bench/run-storms.sh [REPS]      (root; build first with scripts/build.sh)
#   STORE=1 bash bench/run-storms.sh     (also keep every event in the SQLite store)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-5}
EXEC_N=${EXEC_N:-20000}
FILE_N=${FILE_N:-50000}
CONNECT_N=${CONNECT_N:-20000}
BIN=$PWD/build
STORM=$BIN/bench/storm/palisade-storm
WORK=$(mktemp -d /tmp/palisade-bench.XXXXXX)
# The issue's configuration: full monitoring, JSON to a file. STORE=1 adds the SQLite store.
STORE_ARGS=(--no-store)
if [[ ${STORE:-0} == 1 ]]; then STORE_ARGS=(--store "$WORK/events.db"); fi
AGENT_PID=""

cleanup() {
  stop_agent
  umount "$WORK/mnt" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Once auditd has run, syscalls stay slower until this rule is loaded (see docs/benchmarks.md).
command -v auditctl >/dev/null && auditctl -a never,task >/dev/null 2>&1 || true

start_agent() {
  rm -f "$WORK/events.jsonl" "$WORK/status.json" "$WORK"/events.db*
  "$BIN/cli/palisade" agent --no-stdout --json "$WORK/events.jsonl" "${STORE_ARGS[@]}" \
    --status-file "$WORK/status.json" --status-interval 3600 --log-level warn 2>"$WORK/agent.log" &
  AGENT_PID=$!
  # Ready once the start-up status is written (after the sensor attached).
  for _ in $(seq 1 200); do
    [[ -s $WORK/status.json ]] && return 0
    sleep 0.1
  done
  echo "agent did not start:" >&2
  cat "$WORK/agent.log" >&2
  exit 1
}

stop_agent() {
  if [[ -n $AGENT_PID ]]; then
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=""
  fi
}

lost_events() {
  # Sum of sequence gaps and kernel ring-buffer drops over all classes, from the final status.
  grep -oE '"(lost|kernel_drops)": [0-9]+' "$WORK/status.json" | awk '{s += $2} END {print s + 0}'
}

fresh_fs() {
  # A new small ext4 for every file-storm run: this machine's root fs does not reuse freed
  # inodes promptly, which makes back-to-back storms vary 1 s to 7 s.
  umount "$WORK/mnt" 2>/dev/null || true
  rm -f "$WORK/fs.img"
  truncate -s 1G "$WORK/fs.img"
  mkfs.ext4 -q -F "$WORK/fs.img"
  mkdir -p "$WORK/mnt"
  mount -o loop "$WORK/fs.img" "$WORK/mnt"
  mkdir -p "$WORK/mnt/storm"
}

run_storm() {  # kind
  case $1 in
    exec) taskset -c 0 "$STORM" exec "$EXEC_N" ;;
    file) fresh_fs; taskset -c 0 "$STORM" file "$FILE_N" "$WORK/mnt/storm" ;;
    connect) taskset -c 0 "$STORM" connect "$CONNECT_N" ;;
  esac
}

printf '%-8s %4s %10s %10s %8s %6s\n' storm rep without_s with_s ratio lost
for kind in exec file connect; do
  ratios=()
  for rep in $(seq 1 "$REPS"); do
    # Rotate the order so neither side always runs on a warmer machine.
    if (( rep % 2 )); then
      without=$(run_storm "$kind")
      start_agent; with=$(run_storm "$kind"); stop_agent
    else
      start_agent; with=$(run_storm "$kind"); stop_agent
      without=$(run_storm "$kind")
    fi
    lost=$(lost_events)
    ratio=$(awk -v a="$with" -v b="$without" 'BEGIN {printf "%.3f", a / b}')
    ratios+=("$ratio")
    printf '%-8s %4d %10.3f %10.3f %8s %6s\n' "$kind" "$rep" "$without" "$with" "$ratio" "$lost"
  done
  median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
  printf '%-8s median slowdown ratio %s\n' "$kind" "$median"
done

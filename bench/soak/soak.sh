#!/usr/bin/env bash
# The soak: the agent as README runs it (store on, shipped rules, JSON to a file) under a mixed
# workload for MINUTES (30) minutes: every second about 50 execs, 500 file operations (create,
# write, rename, unlink) and 50 local TCP connects. Once a minute it records the agent's RSS, CPU
# seconds, events delivered and lost, store rows written and not written and the store's size on
# disk, as CSV on stdout; the last line says whether memory stayed flat (the last ten minutes'
# RSS within 5% of their mean, and no event lost).
#   bash bench/soak/soak.sh [MINUTES]     (root; build first with scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
MINUTES=${1:-30}
WORK=$(mktemp -d /tmp/palisade-soak.XXXXXX)
BIN=$PWD/build/cli/palisade
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" agent --no-stdout --json "$WORK/events.jsonl" --store "$WORK/events.db" \
  --status-file "$WORK/status.json" --status-interval 10 --log-level warn 2>"$WORK/agent.log" &
agent=$!
pids+=("$agent")
until [[ -s $WORK/status.json ]]; do sleep 0.5; done

# The workload, three loops paced to about one round a second.
mkdir -p "$WORK/files"
python3 -m http.server --bind 127.0.0.1 18765 --directory "$WORK/files" >/dev/null 2>&1 &
pids+=($!)
( while :; do for _ in $(seq 50); do /bin/true; done; sleep 1; done ) &
pids+=($!)
( cd "$WORK/files" && while :; do
    for i in $(seq 125); do echo "$i" >"f$i"; mv "f$i" "g$i"; rm -f "g$i"; done; sleep 1
  done ) &
pids+=($!)
python3 - <<'PY' &
import socket, time
while True:
    for _ in range(50):
        try:
            s = socket.create_connection(("127.0.0.1", 18765), timeout=1); s.close()
        except OSError:
            pass
    time.sleep(1)
PY
pids+=($!)

clock_ticks=$(getconf CLK_TCK)
echo "minute,rss_kib,cpu_s,delivered,lost,store_written,store_not_written,store_bytes"
sample() {
  local rss cpu status
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$agent/status")
  cpu=$(awk -v t="$clock_ticks" '{printf "%.1f", ($14 + $15) / t}' "/proc/$agent/stat")
  status=$(python3 - "$WORK/status.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
lost = sum(c.get("lost", 0) for c in s.get("events", {}).values())
store = s.get("outputs", {}).get("store", {})
print(s.get("delivered", 0), lost, store.get("written", 0), store.get("not_written", 0), sep=",")
PY
)
  local bytes
  bytes=$(du -cb "$WORK"/events.db* 2>/dev/null | tail -1 | cut -f1)
  echo "$1,$rss,$cpu,$status,$bytes"
}
for minute in $(seq "$MINUTES"); do
  sleep 60
  sample "$minute" | tee -a "$WORK/samples.csv"
done
python3 - "$WORK/samples.csv" <<'PY'
import csv, sys
rows = [list(map(float, r)) for r in csv.reader(open(sys.argv[1]))]
tail = [r[1] for r in rows[-10:]]
mean = sum(tail) / len(tail)
flat = all(abs(v - mean) <= 0.05 * mean for v in tail)
lost = rows[-1][4]
print(f"# RSS first {rows[0][1]:.0f} KiB, last {rows[-1][1]:.0f} KiB, max {max(r[1] for r in rows):.0f} KiB;"
      f" last ten minutes {'flat' if flat else 'NOT flat'} (mean {mean:.0f} KiB); lost {lost:.0f};"
      f" agent CPU {rows[-1][2]:.1f} s for {rows[-1][3]:.0f} events")
PY

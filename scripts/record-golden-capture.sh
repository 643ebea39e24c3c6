#!/usr/bin/env bash
# Records tests/golden/workload.palcap: the raw sensor records of a short, scripted workload that
# touches every event class (process, file, network, privilege) and trips several shipped rules.
# tests/unit/golden_replay_test.cpp replays it and compares the OCSF output with
# tests/golden/workload.ocsf.jsonl. Re-record only when the sensor's record ABI changes; then
# regenerate the expected output with PALISADE_UPDATE_GOLDEN=1 build/tests/unit_tests
# --gtest_filter='GoldenReplay.*' and review the diff. Needs root and a built tree.
set -euo pipefail
cd "$(dirname "$0")/.."
out=tests/golden/workload.palcap
work=$(mktemp -d /tmp/palisade-golden.XXXXXX)
trap 'rm -rf "$work"' EXIT

build/cli/palisade agent --no-store --no-stdout --json "$work/events.jsonl" \
  --status-file "$work/status.json" --record "$work/capture.palcap" 2>"$work/agent.log" &
agent=$!
for _ in $(seq 600); do
  grep -q 'palisade agent running' "$work/agent.log" && break
  sleep 0.1
done
grep -q 'palisade agent running' "$work/agent.log" || { cat "$work/agent.log" >&2; exit 1; }

# process: a short tree of execs, forks and exits
sh -c 'ls /etc >/dev/null; true' && bash -c 'exit 3' || true
# file: create, write, rename, chmod, chown, unlink, rmdir
mkdir "$work/dir"
echo data >"$work/dir/a"
mv "$work/dir/a" "$work/dir/b"
chmod 0600 "$work/dir/b"
chown 65534:65534 "$work/dir/b"
rm "$work/dir/b"
rmdir "$work/dir"
# network: bind, listen, accept, connect on loopback (IPv4 and IPv6)
python3 - <<'PY'
import socket
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname()[:2])
    conn, _ = server.accept()
    for s in (conn, client, server):
        s.close()
fd = __import__("os").memfd_create("golden-memfd")
PY
# privilege: setuid/setgid, capabilities, namespaces, a mount, ptrace, one bpf() (BPF_PROG_GET_NEXT_ID)
setpriv --reuid=65534 --regid=65534 --clear-groups true
unshare --mount --uts sh -c 'mount -t tmpfs golden "$0" && umount "$0"' "$work"
strace -o /dev/null true
python3 -c 'import ctypes; attr = ctypes.create_string_buffer(16); ctypes.CDLL(None).syscall(321, 11, attr, 16)'
# detections: an executable copied to and run from /tmp, a shell reading the shadow file
cp /bin/true "$work/true"
"$work/true"
sh -c 'cat /etc/shadow >/dev/null'

sleep 1
kill -INT "$agent"
wait "$agent" || true
cp "$work/capture.palcap" "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)" >&2

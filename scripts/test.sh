#!/usr/bin/env bash
# Sets everything up and runs every test: a bounded fuzzing run of the policy parser and the
# condition compiler, then the unit tests and the root-only integration tests against the real
# kernel (eBPF). As root, nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
# Where the time goes, for keeping CI under its budget: each phase's end, in seconds from here.
started=$SECONDS
phase() { echo "test.sh: $1 done at $((SECONDS - started)) s" >&2; }
bash scripts/build.sh
phase build
# Source habits: every file formatted, components layered one way (no new include across layers,
# no cycle in the target graph, docs/component-graph.dot current).
bash scripts/check-format.sh
python3 scripts/check-layering.py build
phase "format, layering"
# clang-tidy on the changed sources, and the unit suites again under ASan + UBSan: CPU work the
# rest of the run leaves idle (fuzzing is time-bound, the integration tests mostly wait), so they
# run beside it at low priority instead of on the critical path; their results are checked at
# the end.
tidy_log=$(mktemp)
nice -n 10 bash scripts/check-tidy.sh >"$tidy_log" 2>&1 &
tidy=$!
sanitize_log=$(mktemp)
nice -n 19 bash scripts/sanitize.sh >"$sanitize_log" 2>&1 &
sanitize=$!
if [[ $(id -u) -ne 0 ]]; then
  echo "warning: not root: the live-kernel and hypervisor integration tests will skip" >&2
fi

# The hypervisor tests need a libvirtd and a booted test guest. The first setup on a machine takes
# about a minute (packages, guest images, the libguestfs appliance), so it runs while the fuzzers do.
if [[ $(id -u) -eq 0 ]]; then
  vm_setup_log=$(mktemp)
  bash scripts/libvirt-up.sh >"$vm_setup_log" 2>&1 &
  vm_setup=$!
fi

# Fuzzing first, so that ctest's summary closes the output. Any crash fails the run. Every parser
# of outside input has a target (tests/fuzz/); the policy parser and the condition compiler get
# the longest share, the others run two at a time. scripts/fuzz-long.sh is the long run.
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
FUZZ_SHORT_SECONDS=${FUZZ_SHORT_SECONDS:-10}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
fuzz() {  # target seeds seconds
  local corpus
  corpus=$(mktemp -d)
  echo "fuzzing $1 for ${3}s" >&2
  if ! "build-fuzz/tests/fuzz/$1" -max_total_time="$3" -timeout=10 -max_len=4096 \
      -rss_limit_mb=2048 "$corpus" "tests/fuzz/corpus/$2" 2>"$corpus.log"; then
    tail -50 "$corpus.log" >&2
    echo "$1 found a crash" >&2
    return 1
  fi
  echo "$1: $(tail -1 "$corpus.log")" >&2
  rm -rf "$corpus" "$corpus.log"
}
fuzz policy_parser_fuzzer policy "$FUZZ_SECONDS"
fuzz expression_fuzzer expression "$FUZZ_SECONDS"
fuzz_failed=0
for pair in "ocsf_reader_fuzzer:ocsf guest_files_fuzzer:guest" \
    "domain_xml_fuzzer:domain_xml k8s_objects_fuzzer:k8s" "capture_fuzzer:capture config_fuzzer:config containerd_events_fuzzer:containerd"; do
  pids=()
  for entry in $pair; do
    fuzz "${entry%%:*}" "${entry##*:}" "$FUZZ_SHORT_SECONDS" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || fuzz_failed=1; done
done
[[ $fuzz_failed -eq 0 ]] || exit 1
phase fuzz

# The container tests need a running containerd and the locally built test image.
if [[ $(id -u) -eq 0 ]]; then
  bash scripts/containerd-up.sh
  if ! wait "$vm_setup"; then
    cat "$vm_setup_log" >&2
    echo "scripts/libvirt-up.sh failed" >&2
    exit 1
  fi
  cat "$vm_setup_log" >&2
  rm -f "$vm_setup_log"
  # The hypervisor tests find the domain, its disk and its console through these variables.
  # shellcheck source=/dev/null
  source "${PALISADE_VM_DIR:-/var/tmp/palisade-vm}/env.sh"
fi
phase "containerd and libvirt set-up"

ctest --preset default
phase ctest

if ! wait "$tidy"; then
  cat "$tidy_log" >&2
  echo "scripts/check-tidy.sh failed" >&2
  exit 1
fi
tail -1 "$tidy_log" >&2
rm -f "$tidy_log"
phase "clang-tidy"

if ! wait "$sanitize"; then
  tail -80 "$sanitize_log" >&2
  echo "scripts/sanitize.sh failed" >&2
  exit 1
fi
tail -4 "$sanitize_log" >&2
rm -f "$sanitize_log"
phase "sanitized unit suites"

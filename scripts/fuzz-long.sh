#!/usr/bin/env bash
# The long fuzzing run (not CI): every target of tests/fuzz/ for RUNS executions (10 million by
# default), one after another, each from its seed corpus into a kept corpus under
# build-fuzz/corpus/<target>. Prints one line per target (executions, seconds, exec/s, coverage)
# for docs/fuzzing.md; a crash stops the run with the reproducer's path.
#   bash scripts/fuzz-long.sh [TARGET...]      RUNS=10000000
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10000000}
# ASan records the allocating stack of every malloc: a third of the policy parser's time
# (StackDepot::Put) for yaml-cpp's many small nodes. Off for throughput; a crash found is then
# replayed from its reproducer with the default options for the full report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=0}
declare -A seeds=([policy_parser_fuzzer]=policy [expression_fuzzer]=expression
  [ocsf_reader_fuzzer]=ocsf [guest_files_fuzzer]=guest [domain_xml_fuzzer]=domain_xml
  [k8s_objects_fuzzer]=k8s [capture_fuzzer]=capture [config_fuzzer]=config
  [containerd_events_fuzzer]=containerd)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(policy_parser_fuzzer expression_fuzzer ocsf_reader_fuzzer
  guest_files_fuzzer domain_xml_fuzzer k8s_objects_fuzzer capture_fuzzer config_fuzzer
  containerd_events_fuzzer)
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" >/dev/null
for target in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$target
  mkdir -p "$corpus" build-fuzz/crashes
  log=build-fuzz/corpus/$target.log
  start=$SECONDS
  if ! "build-fuzz/tests/fuzz/$target" -runs="$RUNS" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/ "$corpus" \
      "tests/fuzz/corpus/${seeds[$target]}" >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "$target: crash, reproducer in build-fuzz/crashes/" >&2
    exit 1
  fi
  seconds=$((SECONDS - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "$target: $execs executions in ${seconds} s ($((execs / (seconds > 0 ? seconds : 1))) exec/s), $cov, no crash"
done

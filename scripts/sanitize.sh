#!/usr/bin/env bash
# Builds the unit suites with the debug preset (AddressSanitizer + UndefinedBehaviorSanitizer,
# undefined behaviour fatal) and runs them: a leak, an overflow or UB fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
suites=(base_tests runtime_tests unit_tests policy_tests fim_tests)
cmake --preset debug >/dev/null
cmake --build --preset debug -j "$(nproc)" --target "${suites[@]}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for suite in "${suites[@]}"; do
  echo "sanitized: $suite" >&2
  "build-debug/tests/$suite" --gtest_brief=1
done

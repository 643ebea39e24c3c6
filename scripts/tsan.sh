#!/usr/bin/env bash
# ThreadSanitizer over the threaded parts (not in CI: the build alone takes longer than CI's
# margin; docs/fuzzing.md has the last result): the store writer (runtime_tests), the fanotify
# guard and its warden protocol (fanotify_guard_tests, root), the Kubernetes reflector and
# watchers against the local API server (k8s_tests), the hypervisor monitor on libvirt's test
# driver (hv_unit_tests), and the whole agent built with TSan: the containerd watcher against
# the real containerd (container_integration_tests, root) and the metrics endpoint scraped by
# Prometheus (metrics_integration_tests, root). A reported race fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
suites=(${TSAN_SUITES:-runtime_tests fanotify_guard_tests k8s_tests hv_unit_tests
  container_integration_tests metrics_integration_tests})
cmake --preset tsan >/dev/null
# The integration suites run the TSan-built palisade binary (and its warden).
cmake --build --preset tsan -j "$(nproc)" --target "${suites[@]}" palisade palisade-warden
if [[ " ${suites[*]} " == *" container_integration_tests "* ]]; then
  bash scripts/containerd-up.sh
fi
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp"
for suite in "${suites[@]}"; do
  binary=$(find build-tsan/tests -name "$suite" -type f -executable | head -1)
  echo "tsan: $suite" >&2
  "$binary" --gtest_brief=1
done
echo "tsan: no data race in ${suites[*]}" >&2

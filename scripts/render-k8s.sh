#!/usr/bin/env bash
# Renders k8s/rbac.yaml and k8s/daemonset.yaml from the Helm chart with its default values (the
# chart is the one source of truth; tests/chart/chart_test.cpp fails when these are stale).
#   bash scripts/render-k8s.sh [RENDERER]    (default: build it from charts/renderer)
set -euo pipefail
cd "$(dirname "$0")/.."
renderer=${1:-}
if [[ -z $renderer ]]; then
  renderer=build/charts/palisade-chart-render
  mkdir -p build/charts
  (cd charts/renderer && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$PWD/../../build/charts/go-cache" \
    go build -o "../../$renderer" .)
fi
header() {
  echo "# Generated from charts/palisade with its default values by scripts/render-k8s.sh: edit the"
  echo "# chart, not this file. $1"
}
{
  header "Apply charts/palisade/crds/ and this file once per cluster."
  "$renderer" --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml charts/palisade
} >k8s/rbac.yaml
{
  header "The agent on every node (after k8s/rbac.yaml; namespace palisade-system)."
  "$renderer" --show-only templates/configmap.yaml --show-only templates/service.yaml \
    --show-only templates/daemonset.yaml charts/palisade
} >k8s/daemonset.yaml
echo "rendered k8s/rbac.yaml and k8s/daemonset.yaml" >&2

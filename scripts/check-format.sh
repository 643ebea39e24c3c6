#!/usr/bin/env bash
# Fails when a tracked C or C++ source file is not formatted as clang-format would write it:
# .clang-format for C++, node-agent/.clang-format-bpf for the eBPF programs (*.bpf.c); gofmt for
# the chart renderer's Go.
# `scripts/check-format.sh --fix` rewrites them instead.
set -euo pipefail
cd "$(dirname "$0")/.."
fix=false
[[ ${1:-} == --fix ]] && fix=true
bad=0
while IFS= read -r -d '' file; do
  [[ -f $file ]] || continue # deleted in the working tree
  style=file
  [[ $file == *.bpf.c ]] && style=file:node-agent/.clang-format-bpf
  if $fix; then
    clang-format -i --style="$style" "$file"
  elif ! clang-format --dry-run -Werror --style="$style" "$file" >/dev/null 2>&1; then
    echo "not formatted: $file (scripts/check-format.sh --fix)" >&2
    bad=$((bad + 1))
  fi
done < <(git ls-files -z --cached --others --exclude-standard -- '*.cpp' '*.h' '*.c' ':!:node-agent/src/vmlinux/*')
while IFS= read -r -d '' file; do
  [[ -f $file ]] || continue
  if $fix; then
    gofmt -w "$file"
  elif [[ -n $(gofmt -l "$file") ]]; then
    echo "not formatted: $file (scripts/check-format.sh --fix)" >&2
    bad=$((bad + 1))
  fi
done < <(git ls-files -z --cached --others --exclude-standard -- '*.go')
if ((bad)); then
  echo "$bad file(s) not formatted" >&2
  exit 1
fi

#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy, warnings are errors) on the C++ sources a change touches: the files
# that differ from TIDY_BASE (default: the previous commit), as compiled in BUILD_DIR's
# compile_commands.json. `scripts/check-tidy.sh --all` checks every source instead.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
base=${TIDY_BASE:-HEAD~1}
if [[ ${1:-} == --all ]]; then
  mapfile -t files < <(git ls-files -- '*.cpp' ':!:tests/fuzz/*')
elif git rev-parse --verify -q "$base" >/dev/null; then
  mapfile -t files < <(git diff --name-only --diff-filter=d "$base" -- '*.cpp' ':!:tests/fuzz/*')
else
  echo "check-tidy: no $base to compare with; nothing to check" >&2
  exit 0
fi
# Only what the build compiles (a header is checked through the sources that include it).
checked=()
for f in "${files[@]}"; do
  grep -q "\"file\": \"$PWD/$f\"" "$build_dir/compile_commands.json" && checked+=("$f")
done
if ((${#checked[@]} == 0)); then
  echo "check-tidy: no changed C++ source" >&2
  exit 0
fi
echo "clang-tidy on ${#checked[@]} file(s) changed since $base" >&2
printf '%s\0' "${checked[@]}" |
  xargs -0 -n 1 -P "$(nproc)" clang-tidy -p "$build_dir" --quiet \
    --extra-arg=-Wno-gnu-statement-expression --extra-arg=-Wno-c99-extensions 2>/dev/null
# (libbpf's LIBBPF_OPTS macro is a GNU statement expression around a compound literal.)

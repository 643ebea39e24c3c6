#!/usr/bin/env bash
# palisade fim vs AIDE on the same generated tree: baseline (`aide --init`) and check
# (`aide --check`) wall times, entries/s, and whether each tool reports every planted change.
#
#   FILES=20000 REPS=3 bash bench/fim/compare-aide.sh
#
# The tree lives on a fresh loop-mounted ext4 image (docs: platform.md, benchmarking traps: the
# root filesystem's inode handling makes file-heavy runs vary by seconds). It is written just
# before the runs, so both tools read it from the page cache: the numbers compare walking,
# hashing and recording, not the disk. Baselines are interleaved in rotating order, REPS times
# each; then five changes are planted and the checks run, interleaved the same way. Reported:
# medians, and the median of per-rep AIDE/palisade time ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."

FILES=${FILES:-20000}
REPS=${REPS:-3}
SEED=${SEED:-42}
PALISADE=${PALISADE:-build/cli/palisade}
THREADS=${THREADS:-$(nproc)}

[[ $(id -u) -eq 0 ]] || { echo "run as root (loop mount, chown)" >&2; exit 2; }
[[ -x $PALISADE ]] || { echo "no palisade binary at $PALISADE (set PALISADE=...)" >&2; exit 2; }
if ! command -v aide >/dev/null; then
  echo "installing aide from Debian" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends aide >&2
fi

work=$(mktemp -d /tmp/fim-bench.XXXXXX)
mnt=$work/mnt
tree=$mnt/tree
cleanup() {
  umount "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Sizes: 70% up to 8 KiB, 25% up to 128 KiB, 4.7% up to 1 MiB, 0.3% up to 8 MiB (about 50 KiB
# on average, like /usr); 100 files per directory, two levels deep. Deterministic for a seed.
python3 - "$work/tree.plan" "$FILES" "$SEED" <<'EOF'
import random, sys
out, files, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with open(out, "w") as plan:
    for i in range(files):
        r = rng.random()
        top = 8 << 10 if r < 0.70 else 128 << 10 if r < 0.95 else 1 << 20 if r < 0.997 else 8 << 20
        plan.write(f"d{i // 1000:02d}/s{i // 100 % 10}/f{i:06d} {rng.randrange(top + 1)}\n")
EOF
total_bytes=$(awk '{s += $2} END {print s}' "$work/tree.plan")
image_mib=$((total_bytes * 13 / 10 / 1048576 + FILES / 200 + 64))
truncate -s "${image_mib}M" "$work/tree.img"
mkfs.ext4 -q -F "$work/tree.img"
mkdir -p "$mnt"
mount -o loop "$work/tree.img" "$mnt"
echo "generating $FILES files ($((total_bytes / 1048576)) MiB) on a fresh ${image_mib} MiB ext4 image" >&2
python3 - "$tree" "$work/tree.plan" <<'EOF'
import os, sys
root, plan = sys.argv[1], sys.argv[2]
chunk = os.urandom(1 << 20)
for n, line in enumerate(open(plan)):
    rel, size = line.split()
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    size = int(size)
    with open(path, "wb") as f:
        # Random bytes, rotated per file so no two files share content.
        offset = (n * 7919) % len(chunk)
        while size > 0:
            piece = (chunk[offset:] + chunk[:offset])[:size]
            f.write(piece)
            size -= len(piece)
EOF
sync
entries=$(find "$tree" | wc -l)

# AIDE: only this tree, the attributes palisade records, SHA-256; databases in the work dir.
mkdir -p "$work/aide"
workers_line=""
if aide --help 2>&1 | grep -q -- '--workers'; then workers_line="num_workers=$THREADS"; fi
cat >"$work/aide/aide.conf" <<EOF
database_in=file:$work/aide/aide.db
database_out=file:$work/aide/aide.db.new
gzip_dbout=no
report_url=stdout
$workers_line
FIM = p+i+n+u+g+s+m+c+sha256
$tree FIM
EOF

db=$work/palisade/fim.db
content=$work/palisade/content
now() { date +%s.%N; }
# Runs a command, records its wall time in seconds in the named variable; output to a file.
# shellcheck disable=SC2034 # seconds is a reference to the caller's variable
timed() {
  local -n seconds=$1
  local out=$2
  shift 2
  local start end rc=0
  start=$(now)
  "$@" >"$out" 2>&1 || rc=$?
  end=$(now)
  seconds=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')
  echo "$rc" >"$out.rc"
}

palisade_baseline() {
  rm -rf "$work/palisade" && mkdir -p "$work/palisade"
  "$PALISADE" fim baseline "$tree" --db "$db" --content-dir "$content" --threads "$THREADS"
}
aide_baseline() {
  rm -f "$work/aide/aide.db" "$work/aide/aide.db.new"
  aide --config="$work/aide/aide.conf" --init && mv "$work/aide/aide.db.new" "$work/aide/aide.db"
}
palisade_check() { "$PALISADE" fim check --db "$db" --threads "$THREADS" --json; }
aide_check() { aide --config="$work/aide/aide.conf" --check; }

# Runs the palisade step and the AIDE step REPS times, alternating which goes first. Wall times
# go to the arrays named $1 and $3, each step's last output to $work/<array name>.out.
interleave() {
  local -n first_times=$1 second_times=$3
  local rep t=0
  for ((rep = 0; rep < REPS; rep++)); do
    if ((rep % 2 == 0)); then
      timed t "$work/$1.out" "$2"; first_times+=("$t")
      timed t "$work/$3.out" "$4"; second_times+=("$t")
    else
      timed t "$work/$3.out" "$4"; second_times+=("$t")
      timed t "$work/$1.out" "$2"; first_times+=("$t")
    fi
  done
}

# shellcheck disable=SC2034 # filled through references by interleave
declare -a pb ab pc ac
interleave pb palisade_baseline ab aide_baseline
for f in pb ab; do [[ $(cat "$work/$f.out.rc") == 0 ]] || { cat "$work/$f.out" >&2; exit 1; }; done

# The five planted changes.
content_file=$tree/d00/s1/f000105
mode_file=$tree/d00/s2/f000210
owner_file=$tree/d00/s3/f000315
new_file=$tree/d00/s4/planted-new
gone_file=$tree/d00/s5/f000520
size=$(stat -c %s "$content_file")
mtime=$(stat -c %.9Y "$content_file")
# One byte overwritten in place, then the mtime put back: only ctime shows the write.
printf 'X' | dd of="$content_file" bs=1 seek=$((size / 2)) conv=notrunc status=none
touch -m -d "@$mtime" "$content_file"
[[ $(stat -c %s "$content_file") == "$size" && $(stat -c %.9Y "$content_file") == "$mtime" ]]
chmod 4755 "$mode_file"
chown 1234:1234 "$owner_file"
echo "planted" >"$new_file"
rm "$gone_file"

interleave pc palisade_check ac aide_check

# Detection: palisade's JSON lines, AIDE's detailed report (a "File: PATH" block per changed
# entry, one line per changed attribute) and its added/removed lists.
pal_has() {  # path kind [changed]
  grep -F "\"path\":\"$1\"" "$work/pc.out" | grep -F "\"kind\":\"$2\"" |
    grep -qF "${3:+\"$3\"}"
}
aide_block() { awk -v p="File: $1" '$0 == p {on = 1; next} on && /^$/ {exit} on' "$work/ac.out"; }
aide_shows() { aide_block "$1" | grep -q "^ *$2 *:"; }
aide_listed() { grep -qE "^f[$2]+ *: $1\$" "$work/ac.out"; }
detected() { if "$@"; then echo yes; else echo NO; fi; }
declare -A pal aid
pal[content]=$(detected pal_has "$content_file" modified content)
pal[mode]=$(detected pal_has "$mode_file" modified mode)
pal[owner]=$(detected pal_has "$owner_file" modified owner)
pal[added]=$(detected pal_has "$new_file" added)
pal[removed]=$(detected pal_has "$gone_file" removed)
aid[content]=$(detected aide_shows "$content_file" SHA256)
aid[mode]=$(detected aide_shows "$mode_file" Perm)
aid[owner]=$(detected aide_shows "$owner_file" Uid)
aid[added]=$(detected aide_listed "$new_file" '+')
aid[removed]=$(detected aide_listed "$gone_file" '-')
pal_lines=$(wc -l <"$work/pc.out")
aide_summary=$(awk -F: '/^ *(Total number of entries|Added entries|Removed entries|Changed entries):[ \t]*[0-9]/ {
    gsub(/[ \t]/, "", $2); gsub(/^ +/, "", $1); printf "%s%s %s", sep, $2, tolower($1); sep = ", "
  }' "$work/ac.out")

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ratios() {
  local -n a=$1 b=$2
  for i in "${!a[@]}"; do awk -v x="${b[$i]}" -v y="${a[$i]}" 'BEGIN {print x / y}'; done
}
row() {  # label palisade-times aide-times
  local -n p=$2 a=$3
  local mp ma r rs
  mp=$(median "${p[@]}")
  ma=$(median "${a[@]}")
  mapfile -t rs < <(ratios "$2" "$3")
  r=$(median "${rs[@]}")
  printf '| %s | %.2f s (%.0f entries/s) | %.2f s (%.0f entries/s) | %.1fx |\n' "$1" "$mp" \
    "$(awk -v n="$entries" -v t="$mp" 'BEGIN {print n / t}')" "$ma" \
    "$(awk -v n="$entries" -v t="$ma" 'BEGIN {print n / t}')" "$r"
}

echo
aide_threads=${workers_line:-single-threaded}
echo "tree: $FILES files, $entries entries, $((total_bytes / 1048576)) MiB; $(nproc) CPUs;"\
  "palisade threads $THREADS; AIDE $(aide --version 2>&1 | head -1 | awk '{print $2}')"\
  "($aide_threads); medians of $REPS"
echo
echo "| run | palisade fim | AIDE | AIDE / palisade (median of per-rep ratios) |"
echo "|---|---|---|---|"
row "baseline (aide --init)" pb ab
row "check, 5 changes planted (aide --check)" pc ac
echo
echo "| planted change | palisade fim check | aide --check |"
echo "|---|---|---|"
for k in content mode owner added removed; do
  case $k in
    content) label="content rewritten, same size, mtime put back" ;;
    mode) label="mode 0644 -> 4755 (setuid)" ;;
    owner) label="owner 0 -> 1234" ;;
    added) label="new file" ;;
    removed) label="deleted file" ;;
  esac
  echo "| $label | ${pal[$k]} | ${aid[$k]} |"
done
echo
echo "palisade check: exit $(cat "$work/pc.out.rc"), $((pal_lines - 1)) changes reported;"\
  "aide --check: exit $(cat "$work/ac.out.rc"), $aide_summary"
grep -v '^{' "$work/pc.out" | sed 's/^/palisade: /'

#!/usr/bin/env bash
# Added latency per exec of each application-lockdown mechanism, and fapolicyd on the same storm.
#
# Workload: N runs of /usr/bin/true (fork + execv + waitpid in a loop, after WARMUP untimed ones)
# from a small C driver (execstorm.c beside this script, compiled into the work directory),
# pinned to CPU 0 with taskset and run inside a throwaway cgroup v2 directory. Configurations,
# each run once per repetition, the order rotated from one repetition to the next:
#   baseline          no agent, no fapolicyd
#   observe           palisade agent, no policy for the cgroup, --exec-mechanism kill (the eBPF
#                     sensor and the pinned enforcement programs; nothing in user space per exec)
#   observe-fanotify  palisade agent, no policy, --exec-mechanism fanotify (what `auto` picks on a
#                     kernel without BPF-LSM: the fanotify group marks / whether or not a policy
#                     selects anything)
#   fanotify          WorkloadPolicy in enforce mode on the cgroup (allow /usr/bin/*),
#                     --exec-mechanism fanotify
#   kill              the same policy, --exec-mechanism kill (SIGKILL at exec, eBPF)
#   fapolicyd         Debian's fapolicyd in the foreground (--debug-deny), see setup_fapolicyd
# BPF-LSM is reported, from the agent's own probe, as not measurable where the kernel refuses it.
# Reported: medians over the repetitions of execs/s and µs per exec, and medians of the per-rep
# differences and ratios against the baseline of the same repetition.
#
#   bash bench/enforce/exec-latency.sh                   (root; 9 to 12 minutes here)
#   N=5000 REPS=5 WARMUP=200 PALISADE=/tmp/palisade-bench CONFIGS="baseline kill" bash ...
#   KEEP=1 keeps the work directory (agent and fapolicyd logs, status files).
#   DEADLINE=900: no repetition starts after this many seconds; the table covers those done.
#
# Everything started here is stopped on exit, also on failure or Ctrl-C: agents (SIGTERM, then
# `palisade agent --uninstall` of the pins), fapolicyd (and /etc/fapolicyd, its database and its
# report are put back as they were), the cgroup and the work directory.
set -euo pipefail

N=${N:-5000}
REPS=${REPS:-5}
WARMUP=${WARMUP:-200}
PALISADE=${PALISADE:-/tmp/palisade-bench}
PINS=${PINS:-/sys/fs/bpf/palisade-bench}
CONFIGS=${CONFIGS:-baseline observe observe-fanotify fanotify kill fapolicyd}
DEADLINE=${DEADLINE:-900}
HERE=$(cd "$(dirname "$0")" && pwd)
STARTED=$SECONDS

log() { printf '[%4ds] %s\n' $((SECONDS - STARTED)) "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (eBPF, fanotify, cgroups)"
[[ -x $PALISADE ]] || die "no palisade binary at $PALISADE (copy build/cli/palisade there, or set PALISADE)"
if [[ -e $PINS ]] && [[ -n $(pgrep -f -- "--pin-directory $PINS" || true) ]]; then
  die "an agent already uses $PINS"
fi
need_pkg() {  # command package
  command -v "$1" >/dev/null && return 0
  log "installing $2"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null
}
need_pkg gcc gcc
need_pkg jq jq
need_pkg taskset util-linux

# The cgroup2 mount: /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on pure v2.
CG2=$(awk '{for (i = 7; i <= NF; i++) if ($i == "-") {if ($(i + 1) == "cgroup2") {print $5; exit}; break}}' \
  /proc/self/mountinfo)
[[ -n $CG2 ]] || die "no cgroup2 mount in /proc/self/mountinfo"

WORK=$(mktemp -d /tmp/palisade-exec-bench.XXXXXX)
CG_REL=/palisade-exec-bench-$$
CG=$CG2$CG_REL
DRIVER=$WORK/execstorm
AGENT_PID=""
FAPO_PID=""
FAPO_BACKUP=""
FAPO_DB_EXISTED=1
FAPO_REPORT_EXISTED=1
FAPO_SKIP=""

stop_agent() {
  if [[ -n $AGENT_PID ]]; then
    kill -TERM "$AGENT_PID" 2>/dev/null || true
    for _ in $(seq 1 600); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=""
  fi
  # Kernel enforcement stays pinned after the agent exits: remove it.
  if [[ -e $PINS ]]; then
    "$PALISADE" agent --uninstall --pin-directory "$PINS" >>"$WORK/uninstall.log" 2>&1 ||
      log "warning: palisade agent --uninstall --pin-directory $PINS failed (see $WORK/uninstall.log)"
  fi
}

stop_fapolicyd() {
  if [[ -n $FAPO_PID ]]; then
    kill -TERM "$FAPO_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$FAPO_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$FAPO_PID" 2>/dev/null || true
    wait "$FAPO_PID" 2>/dev/null || true
    FAPO_PID=""
  fi
}

restore_fapolicyd() {
  [[ -n $FAPO_BACKUP ]] || return 0
  rm -rf /etc/fapolicyd && cp -a "$FAPO_BACKUP" /etc/fapolicyd
  [[ $FAPO_DB_EXISTED == 1 ]] || rm -f /var/lib/fapolicyd/data.mdb /var/lib/fapolicyd/lock.mdb \
    /var/lib/fapolicyd/db.ver
  if [[ $FAPO_REPORT_EXISTED == 0 && -e /var/log/fapolicyd-access.log ]]; then
    mv /var/log/fapolicyd-access.log "$WORK/fapolicyd-access.log"
  fi
  FAPO_BACKUP=""
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_agent
  stop_fapolicyd
  restore_fapolicyd
  if [[ -d $CG ]]; then
    for _ in 1 2 3 4 5; do rmdir "$CG" 2>/dev/null && break; sleep 0.2; done
    [[ -d $CG ]] && log "warning: could not remove $CG"
  fi
  if [[ ${KEEP:-0} == 1 ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Once auditd has run, syscalls stay slower until this rule is loaded (docs/benchmarks.md).
command -v auditctl >/dev/null && auditctl -a never,task >/dev/null 2>&1 || true
# A leftover of an interrupted earlier run of this script.
[[ -e $PINS ]] && "$PALISADE" agent --uninstall --pin-directory "$PINS" >/dev/null 2>&1 || true

gcc -O2 -Wall -o "$DRIVER" "$HERE/execstorm.c"
mkdir "$CG"

# ---------------------------------------------------------------------------------- palisade

mkdir -p "$WORK/no-policy" "$WORK/policy"
cat >"$WORK/policy/exec-bench.yaml" <<EOF
apiVersion: palisade.dev/v1
kind: WorkloadPolicy
metadata: {name: exec-bench}
spec:
  selector: {cgroups: ["$CG_REL"]}
  mode: enforce
  process:
    mode: enforce
    allow:
      - path: "/usr/bin/*"
EOF

start_agent() {  # mechanism policy-dir wait-for-workloads(0|1) log
  rm -f "$WORK/status.json"
  "$PALISADE" agent --no-stdout --no-store --policy-dir "$2" --pin-directory "$PINS" \
    --status-file "$WORK/status.json" --status-interval 3600 --exec-mechanism "$1" \
    --log-level warn 2>"$4" &
  AGENT_PID=$!
  local filter='.state == "running"'
  [[ $3 == 1 ]] && filter='.state == "running" and (.enforcement.workloads | length > 0)'
  for _ in $(seq 1 900); do
    if [[ -s $WORK/status.json ]] && jq -e "$filter" "$WORK/status.json" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$AGENT_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "agent ($1) did not become ready; its log:"
  tail -20 "$4" >&2
  return 1
}

# --------------------------------------------------------------------------------- fapolicyd

# Debian 12's fapolicyd 1.1.7 is built without rpm support and has no deb backend (that came in
# 1.3): its only trust source here is the file backend, so the files the workload needs are added
# to a trust.d file. Its default rule set (rules.d/90-deny-execute.rules: deny every execute)
# would stop every program on this shared machine, so the rules below are the ELF rules of
# upstream's "known-libs" set (40-bad-elf, 41-shared-obj, 42-trusted-elf, 90-deny-execute,
# 95-allow-open) with the denials confined to the benchmark, plus a rule allowing /usr/bin/true:
# the driver may execute only trusted files, /usr/bin/true may only map trusted libraries, and
# everything else on the host is allowed. fapolicyd still gets, and decides, every open and every
# exec on the watched filesystems, which is what costs.
setup_fapolicyd() {
  if ! command -v fapolicyd >/dev/null; then
    log "installing fapolicyd"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q fapolicyd >"$WORK/fapolicyd-install.log" 2>&1 ||
      { FAPO_SKIP="apt-get install fapolicyd failed: $(tail -1 "$WORK/fapolicyd-install.log")"; return; }
  fi
  if pgrep -x fapolicyd >/dev/null; then
    FAPO_SKIP="a fapolicyd is already running on this host; not touching it"
    return
  fi
  FAPO_BACKUP=$WORK/etc-fapolicyd.orig
  cp -a /etc/fapolicyd "$FAPO_BACKUP"
  [[ -e /var/lib/fapolicyd/data.mdb ]] || FAPO_DB_EXISTED=0
  [[ -e /var/log/fapolicyd-access.log ]] || FAPO_REPORT_EXISTED=0
  mkdir -p /var/lib/fapolicyd /run/fapolicyd
  local conf=/etc/fapolicyd/fapolicyd.conf
  # watch_fs: ext4 only (the root filesystem, as palisade's fanotify mark): the default list
  #   includes tmpfs, which would put the sandbox's own tmpfs mounts under fapolicyd.
  # uid/gid 0: dropping to the fapolicyd user fails here ("Cannot change to uid"): it asks
  #   libcap-ng to keep CAP_SYS_RESOURCE, which this machine's capability bounding set lacks.
  # detailed_report 0: the report written at exit would list every file the host opened.
  sed -i -e 's/^watch_fs *=.*/watch_fs = ext4/' -e 's/^uid *=.*/uid = 0/' \
    -e 's/^gid *=.*/gid = 0/' -e 's/^detailed_report *=.*/detailed_report = 0/' "$conf"
  rm -f /etc/fapolicyd/rules.d/*
  cat >/etc/fapolicyd/rules.d/50-palisade-exec-bench.rules <<EOF
allow perm=execute exe=$DRIVER : path=/usr/bin/true trust=1
deny_audit perm=any all : ftype=application/x-bad-elf
allow perm=open all : ftype=application/x-sharedlib trust=1
deny_audit perm=open exe=/usr/bin/true : ftype=application/x-sharedlib
allow perm=execute all : trust=1
deny_audit perm=execute exe=$DRIVER : all
allow perm=open all : all
allow perm=execute all : all
EOF
  fagenrules >"$WORK/fagenrules.log" 2>&1 || { FAPO_SKIP="fagenrules failed"; return; }
  local f
  for f in /usr/bin/true /usr/lib/x86_64-linux-gnu/libc.so.6 \
    /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; do
    fapolicyd-cli --file add "$f" --trust-file palisade-exec-bench >>"$WORK/fapolicyd-cli.log" 2>&1 ||
      { FAPO_SKIP="fapolicyd-cli --file add $f failed"; return; }
  done
  fapolicyd-cli --check-config >>"$WORK/fapolicyd-cli.log" 2>&1 ||
    { FAPO_SKIP="fapolicyd-cli --check-config: $(tail -1 "$WORK/fapolicyd-cli.log")"; return; }
}

start_fapolicyd() {  # log
  fapolicyd --debug-deny >"$1" 2>&1 &
  FAPO_PID=$!
  for _ in $(seq 1 600); do
    grep -q "Starting to listen for events" "$1" && return 0
    kill -0 "$FAPO_PID" 2>/dev/null || break
    sleep 0.1
  done
  FAPO_SKIP="fapolicyd did not start: $(grep -v '^allow\|^deny' "$1" | tail -3 | tr '\n' ' ')"
  stop_fapolicyd
  return 1
}

# ------------------------------------------------------------------------------- measurement

# Execs of /usr/bin/true must find its inode freshly loaded: on Linux 6.13 and later (multigrain
# timestamps) the first stat() of a file sets a "ctime queried" flag in the top bit of
# inode->i_ctime_nsec, which the kill mechanism's eBPF program reads without masking, so every
# allowlisted file it stat()ed when building the allowlist would be killed. Dropping the file's
# pages and then the unused inodes evicts it; the kernel reloads it with the flag clear. Done
# before every configuration's run, so that all of them start from the same cold inode.
evict_true_inode() {
  dd if=/usr/bin/true iflag=nocache count=0 status=none 2>/dev/null || true
  sync /usr/bin/true 2>/dev/null || true
  echo 2 >/proc/sys/vm/drop_caches
}

declare -A EPS US NOTE
LSM_DETAIL=""
KILL_BUG=""
OBSERVE_FANOTIFY_REQUESTS=""
FAPO_TRUST=""

expected_denial() {
  case $1 in
    fanotify | fapolicyd) echo "refused EPERM" ;;
    kill) echo "killed KILL" ;;
    *) echo "exit 1" ;;  # /usr/sbin/nologin runs and exits 1
  esac
}

run_config() {  # config rep
  local cfg=$1 rep=$2 alog="$WORK/$1-$2.log"
  case $cfg in
    baseline) ;;
    observe) start_agent kill "$WORK/no-policy" 0 "$alog" || return 1 ;;
    observe-fanotify) start_agent fanotify "$WORK/no-policy" 0 "$alog" || return 1 ;;
    fanotify) start_agent fanotify "$WORK/policy" 1 "$alog" || return 1 ;;
    kill) start_agent kill "$WORK/policy" 1 "$alog" || return 1 ;;
    fapolicyd)
      [[ -z $FAPO_SKIP ]] || return 1
      start_fapolicyd "$alog" || return 1
      [[ -n $FAPO_TRUST ]] || FAPO_TRUST=$(grep -E 'backend|trust database' "$alog" | paste -sd ';' -)
      ;;
  esac
  if [[ -z $LSM_DETAIL && -s $WORK/status.json && $cfg != baseline && $cfg != fapolicyd ]]; then
    LSM_DETAIL=$(jq -r '.enforcement.mechanisms[] | select(.mechanism | startswith("exec: BPF-LSM"))
      | . as $m | if (($m.detail // "") | startswith($m.state)) then $m.detail
        else "\($m.state): \($m.detail // "")" end' \
      "$WORK/status.json" 2>/dev/null || true)
  fi
  local before after denied
  before=$("$DRIVER" check /usr/bin/true "$CG")
  evict_true_inode
  after=$("$DRIVER" check /usr/bin/true "$CG")
  denied=$("$DRIVER" check /usr/sbin/nologin "$CG")
  if [[ $cfg == kill && $before != "exit 0" && $after == "exit 0" ]]; then
    KILL_BUG="allowlisted /usr/bin/true was '$before' until its inode was evicted"
  fi
  local ok=1 out=""
  if [[ $after != "exit 0" ]]; then
    NOTE[$cfg]+=" rep $rep: allowed exec gave '$after', not measured;"
    ok=0
  else
    if [[ $denied != "$(expected_denial "$cfg")" ]]; then
      NOTE[$cfg]+=" rep $rep: /usr/sbin/nologin gave '$denied', expected '$(expected_denial "$cfg")';"
    fi
    out=$(timeout 600 taskset -c 0 "$DRIVER" run "$N" "$WARMUP" "$CG" || true)
    local eps us failed
    read -r eps us failed <<<"$out"
    if [[ -z ${failed:-} || $failed != 0 ]]; then
      NOTE[$cfg]+=" rep $rep: storm failed (${out:-no output});"
      ok=0
    else
      EPS[$cfg,$rep]=$eps
      US[$cfg,$rep]=$us
    fi
  fi
  case $cfg in
    baseline) ;;
    fapolicyd) stop_fapolicyd ;;
    *)
      stop_agent
      if [[ $cfg == observe-fanotify && -s $WORK/status.json ]]; then
        OBSERVE_FANOTIFY_REQUESTS=$(jq -r '.enforcement.exec_guard.requests // empty' \
          "$WORK/status.json" 2>/dev/null || true)
      fi
      cp "$WORK/status.json" "$WORK/status-$cfg-$rep.json" 2>/dev/null || true
      ;;
  esac
  log "rep $rep $cfg: ${out:-not measured} (load $(cut -d' ' -f1 /proc/loadavg); checks: true before eviction '$before', after '$after'; nologin '$denied')"
  [[ $ok == 1 ]]
}

median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print ""; else print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

read -r -a CFG <<<"$CONFIGS"
for c in "${CFG[@]}"; do
  case $c in
    baseline | observe | observe-fanotify | fanotify | kill | fapolicyd) ;;
    *) die "unknown configuration $c" ;;
  esac
  NOTE[$c]=""
done
[[ " $CONFIGS " == *" fapolicyd "* ]] && setup_fapolicyd
[[ -n $FAPO_SKIP ]] && log "fapolicyd: not measured: $FAPO_SKIP"

log "machine: $(uname -r), $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "palisade binary: $PALISADE, sha256 $(sha256sum "$PALISADE" | cut -c1-16), $(stat -c '%y' "$PALISADE" | cut -d. -f1)"
log "N=$N WARMUP=$WARMUP REPS=$REPS configurations: ${CFG[*]}; cgroup $CG; palisade $PALISADE"
REPS_DONE=0
for rep in $(seq 1 "$REPS"); do
  if ((SECONDS - STARTED > DEADLINE)); then
    log "deadline of ${DEADLINE}s reached: stopping after $REPS_DONE repetitions"
    break
  fi
  n=${#CFG[@]}
  for ((i = 0; i < n; i++)); do
    c=${CFG[$(((i + rep - 1) % n))]}
    run_config "$c" "$rep" || true
  done
  REPS_DONE=$rep
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------------------------ report

echo
echo "Exec storm: $N x /usr/bin/true (fork+execv+waitpid, after $WARMUP untimed), taskset -c 0, cgroup v2 $CG_REL"
echo "$REPS_DONE repetitions, configurations rotated; $(uname -r), $(nproc) CPUs; load average at the end $LOAD_END"
echo
echo "| configuration | execs/s | µs per exec | added µs per exec | ratio | reps |"
echo "|---|---:|---:|---:|---:|---:|"
for c in "${CFG[@]}"; do
  eps_list=() us_list=() add_list=() ratio_list=()
  for rep in $(seq 1 "$REPS_DONE"); do
    [[ -n ${US[$c,$rep]:-} ]] || continue
    eps_list+=("${EPS[$c,$rep]}")
    us_list+=("${US[$c,$rep]}")
    if [[ -n ${US[baseline,$rep]:-} ]]; then
      add_list+=("$(awk -v a="${US[$c,$rep]}" -v b="${US[baseline,$rep]}" 'BEGIN {printf "%.1f", a - b}')")
      ratio_list+=("$(awk -v a="${US[$c,$rep]}" -v b="${US[baseline,$rep]}" 'BEGIN {printf "%.3f", a / b}')")
    fi
  done
  if ((${#us_list[@]} == 0)); then
    printf '| %s | – | – | – | – | 0 |\n' "$c"
    continue
  fi
  m_eps=$(printf '%s\n' "${eps_list[@]}" | median)
  m_us=$(printf '%s\n' "${us_list[@]}" | median)
  m_add=$(printf '%s\n' "${add_list[@]}" | median)
  m_ratio=$(printf '%s\n' "${ratio_list[@]}" | median)
  printf '| %s | %.0f | %.1f | %s | %s | %d |\n' "$c" "$m_eps" "$m_us" \
    "$([[ $c == baseline ]] && echo – || printf '%+.1f' "$m_add")" \
    "$([[ $c == baseline ]] && echo 1 || printf '%.3f×' "$m_ratio")" "${#us_list[@]}"
done
echo "| BPF-LSM (--exec-mechanism lsm) | not measurable here | | | | 0 |"
echo
echo "Per repetition (µs per exec):"
printf '%-18s' config
for rep in $(seq 1 "$REPS_DONE"); do printf '%9s' "rep$rep"; done
echo
for c in "${CFG[@]}"; do
  printf '%-18s' "$c"
  for rep in $(seq 1 "$REPS_DONE"); do printf '%9s' "${US[$c,$rep]:--}"; done
  echo
done
echo
echo "Notes:"
echo "- BPF-LSM: ${LSM_DETAIL:-not probed (no agent configuration ran)}"
[[ -n $KILL_BUG ]] && echo "- kill: $KILL_BUG (eBPF reads the raw i_ctime_nsec, whose top bit is the multigrain 'ctime queried' flag); measured after evicting the inode"
[[ -n $OBSERVE_FANOTIFY_REQUESTS ]] && echo "- observe-fanotify: the agent's fanotify guard answered $OBSERVE_FANOTIFY_REQUESTS exec requests in its last repetition with no policy bound"
[[ -n $FAPO_TRUST ]] && echo "- fapolicyd $(dpkg-query -W -f '${Version}' fapolicyd 2>/dev/null) trust sources at start-up: $FAPO_TRUST"
[[ -n $FAPO_SKIP ]] && echo "- fapolicyd: not measured: $FAPO_SKIP"
for c in "${CFG[@]}"; do
  [[ -n ${NOTE[$c]} ]] && echo "- $c:${NOTE[$c]}"
done
echo "- took $((SECONDS - STARTED)) s"

# shellcheck shell=bash disable=SC2034
# Names and paths shared by scripts/libvirt-up.sh and scripts/libvirt-down.sh, which source this.
# docs/hypervisor-testenv.md describes the environment they build and tear down.

# Everything the test environment writes, except /etc/libvirt/qemu.conf and libvirtd's own state
# under /run/libvirt, /var/lib/libvirt and /var/cache/libvirt.
vm_dir=${PALISADE_VM_DIR:-/var/tmp/palisade-vm}
vm_run_dir=$vm_dir/run      # libvirtd.conf, libvirtd.pid, libvirtd.log, console.log, stamps
vm_guest_dir=$vm_dir/guest  # vmlinuz, initrd.gz, disk.qcow2, the domain XML
vm_env_file=$vm_dir/env.sh

vm_uri=qemu:///system
vm_domain=palisade-test-vm
vm_tap_dev=palisade-tap0

# The QEMU driver reads only this file (there is no option to point libvirtd elsewhere). An
# operator's own copy is kept aside while the test configuration is in place.
vm_qemu_conf=/etc/libvirt/qemu.conf
vm_qemu_conf_saved=/etc/libvirt/qemu.conf.palisade-saved
vm_qemu_conf_marker='# palisade test environment: written by scripts/libvirt-up.sh'

vsh() { virsh -q -c "$vm_uri" "$@"; }

# Whether a process runs (one that died but is not reaped yet does not).
vm_alive() {
  [[ -d /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Stops a process: SIGTERM, SIGKILL after the given seconds. Fails if it still runs then.
vm_stop() {
  local pid=$1 tenths=$(($2 * 10))
  kill "$pid" 2>/dev/null || true
  for ((; tenths > 0; tenths--)); do
    vm_alive "$pid" || return 0
    sleep 0.1
  done
  echo "$(basename "$0"): process $pid ignored SIGTERM for $2 s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
  ! vm_alive "$pid"
}

# The pid of the libvirtd these scripts started, when it still runs.
vm_own_libvirtd_pid() {
  local pid
  pid=$(cat "$vm_run_dir/libvirtd.pid" 2>/dev/null) || return 1
  [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == libvirtd ]] && vm_alive "$pid" || return 1
  echo "$pid"
}

vm_libvirtd_answers() { timeout 20 virsh -q -c "$vm_uri" version >/dev/null 2>&1; }

# The QEMU processes of the test domain, found by the name libvirt passes on their command line.
vm_qemu_pids() {
  local dir
  for dir in /proc/[0-9]*; do
    if [[ $(cat "$dir/comm" 2>/dev/null) == qemu-system* ]] && vm_alive "${dir#/proc/}" &&
      grep -qa -- "guest=$vm_domain," "$dir/cmdline" 2>/dev/null; then
      echo "${dir#/proc/}"
    fi
  done
  return 0
}

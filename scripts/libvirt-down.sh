#!/usr/bin/env bash
# Tears down what scripts/libvirt-up.sh set up: destroys and undefines palisade-test-vm, stops the
# libvirtd the up script started (a libvirtd it did not start is left running) and puts back an
# operator's /etc/libvirt/qemu.conf. Idempotent. Run as root.
#   --purge   also delete $PALISADE_VM_DIR (guest images, logs, env.sh) and the test qemu.conf
set -euo pipefail
# shellcheck source=scripts/libvirt-common.sh
source "$(dirname "$0")/libvirt-common.sh"

purge=0
case ${1:-} in
  --purge) purge=1 ;;
  "") ;;
  *)
    echo "usage: $0 [--purge]" >&2
    exit 2
    ;;
esac
[[ $(id -u) -eq 0 ]] || {
  echo "libvirt-down: run as root" >&2
  exit 1
}
say() { echo "libvirt-down: $*" >&2; }

remove_domain() {
  vsh domstate "$vm_domain" >/dev/null 2>&1 || return 0
  vsh destroy "$vm_domain" >/dev/null 2>&1 && say "destroyed $vm_domain"
  vsh undefine --snapshots-metadata "$vm_domain" >/dev/null && say "undefined $vm_domain"
}

stop_libvirtd() {
  local pid=$1
  vm_stop "$pid" 10 || {
    say "libvirtd $pid does not stop"
    exit 1
  }
  rm -f "$vm_run_dir/libvirtd.pid"
  say "stopped libvirtd $pid"
}

# QEMU outlives libvirtd by design: a guest whose libvirtd died (or was stopped before it) is
# still running and holds its tap device.
kill_leftover_qemu() {
  local pid
  for pid in $(vm_qemu_pids); do
    say "killing the leftover QEMU $pid of $vm_domain"
    vm_stop "$pid" 5 || say "QEMU $pid does not stop"
  done
  if ip link show "$vm_tap_dev" >/dev/null 2>&1; then
    ip link delete "$vm_tap_dev" && say "deleted the tap device $vm_tap_dev"
  fi
}

restore_qemu_conf() {
  if [[ -f $vm_qemu_conf_saved ]]; then
    mv -f "$vm_qemu_conf_saved" "$vm_qemu_conf"
    say "put the operator's $vm_qemu_conf back"
  elif ((purge)) && [[ -f $vm_qemu_conf ]] && grep -qxF "$vm_qemu_conf_marker" "$vm_qemu_conf"; then
    rm -f "$vm_qemu_conf"
    say "removed the test $vm_qemu_conf"
  fi
}

if pid=$(vm_own_libvirtd_pid); then
  remove_domain
  stop_libvirtd "$pid"
  restore_qemu_conf
elif vm_libvirtd_answers; then
  say "libvirtd was not started by libvirt-up.sh: removing only $vm_domain"
  remove_domain
else
  rm -f "$vm_run_dir/libvirtd.pid"
  # No libvirtd: a definition we left behind is removed from its directory.
  rm -f "/etc/libvirt/qemu/$vm_domain.xml"
  restore_qemu_conf
fi
kill_leftover_qemu
if ((purge)); then
  rm -rf "$vm_dir"
  say "deleted $vm_dir"
fi

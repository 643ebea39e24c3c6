#!/usr/bin/env bash
# Brings up the real-libvirt test environment of the hypervisor component: a libvirtd with the
# QEMU driver (started here: the test machines have no systemd) and a tiny Linux guest,
# palisade-test-vm, booted under software emulation. Run as root. Idempotent: each stage checks
# what is already there and only does what is missing or out of date, so a second run takes a
# few seconds. Writes $PALISADE_VM_DIR/env.sh (default /var/tmp/palisade-vm/env.sh) for the tests
# to source. docs/hypervisor-testenv.md explains each stage; scripts/libvirt-down.sh undoes it.
set -euo pipefail
# shellcheck source=scripts/libvirt-common.sh
source "$(dirname "$0")/libvirt-common.sh"

readonly user_mac=52:54:00:50:4c:01 # user-mode NIC: guest eth0
readonly tap_mac=52:54:00:50:4c:02  # tap NIC: guest eth1, host $vm_tap_dev
readonly ready_marker=PALISADE-GUEST-READY # tests/hypervisor/guest_console.h waits for it too
readonly guestfs_cache=${LIBGUESTFS_CACHEDIR:-/var/tmp}

packages=(
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils
  busybox-static linux-image-amd64 kmod e2fsprogs fdisk cpio gzip libguestfs-tools
)

say() { echo "libvirt-up: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# Runs one stage and reports how long it took.
stage() {
  local name=$1 start=${EPOCHREALTIME/./}
  shift
  "$@"
  local us=$((${EPOCHREALTIME/./} - start))
  printf 'libvirt-up: %-10s %3d.%01ds\n' "$name" $((us / 1000000)) $((us / 100000 % 10)) >&2
}

check_host() {
  [[ $(id -u) -eq 0 ]] || die "run as root (libvirtd, /etc/libvirt and the guest's QEMU run as root)"
  # The default lives under the world-writable /var/tmp: refuse a directory someone else planted.
  if [[ -e $vm_dir ]]; then
    [[ ! -L $vm_dir && $(stat -c %u "$vm_dir") -eq 0 ]] ||
      die "$vm_dir is a symlink or not owned by root; remove it or set PALISADE_VM_DIR"
  fi
  mkdir -p "$vm_run_dir" "$vm_guest_dir"
  chmod 0755 "$vm_dir"
}

install_packages() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "installing ${missing[*]}"
  local apt=(apt-get -q -y -o DPkg::Lock::Timeout=900 install --no-install-recommends)
  # scripts/install-deps.sh has just refreshed the package lists in CI: only update when needed.
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >"$vm_run_dir/apt.log" 2>&1; then
    apt-get -q -o DPkg::Lock::Timeout=900 update >>"$vm_run_dir/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${missing[@]}" >>"$vm_run_dir/apt.log" 2>&1 ||
      {
        tail -n 30 "$vm_run_dir/apt.log" >&2
        die "apt-get install failed (log: $vm_run_dir/apt.log)"
      }
  fi
}

# The QEMU driver resolves its built-in account, libvirt-qemu, before it reads qemu.conf, even
# though the test configuration runs QEMU as root.
ensure_qemu_account() {
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  getent passwd libvirt-qemu >/dev/null ||
    useradd --system --gid libvirt-qemu --home-dir /var/lib/libvirt --no-create-home \
      --shell /usr/sbin/nologin libvirt-qemu
}

# Writes the test qemu.conf; sets qemu_conf_changed when the file on disk changed.
qemu_conf_changed=0
foreign_libvirtd=0
write_qemu_conf() {
  local wanted
  wanted=$(
    cat <<EOF
$vm_qemu_conf_marker
# (an operator's previous file is kept as $vm_qemu_conf_saved and put back by libvirt-down.sh).
# QEMU runs as root and libvirt leaves file ownership alone: the guest's files live in a
# root-owned directory and no libvirt-qemu-owned copies are needed.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
# No AppArmor/SELinux labelling: nothing to confine a throwaway test guest with here.
security_driver = "none"
# QEMU writes the serial console log itself, so no virtlogd is needed.
stdio_handler = "file"
# No private /dev mount namespace per guest: it needs features these machines lack.
namespaces = [ ]
EOF
  )
  [[ -f $vm_qemu_conf && $(<"$vm_qemu_conf") == "$wanted" ]] && return 0
  if [[ -f $vm_qemu_conf ]] && ! grep -qxF "$vm_qemu_conf_marker" "$vm_qemu_conf"; then
    [[ -e $vm_qemu_conf_saved ]] && die "$vm_qemu_conf is not ours and $vm_qemu_conf_saved exists"
    say "keeping the operator's $vm_qemu_conf as $vm_qemu_conf_saved"
    mv "$vm_qemu_conf" "$vm_qemu_conf_saved"
  fi
  mkdir -p "$(dirname "$vm_qemu_conf")"
  printf '%s\n' "$wanted" >"$vm_qemu_conf.tmp"
  mv "$vm_qemu_conf.tmp" "$vm_qemu_conf"
  qemu_conf_changed=1
}

write_libvirtd_conf() {
  cat >"$vm_run_dir/libvirtd.conf" <<EOF
# libvirtd for palisade's tests (scripts/libvirt-up.sh): local UNIX sockets only, no auth.
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:$vm_run_dir/libvirtd.log"
EOF
}

start_libvirtd() {
  ensure_qemu_account
  local pid=
  if ! pid=$(vm_own_libvirtd_pid) && vm_libvirtd_answers; then
    say "a libvirtd these scripts did not start answers on $vm_uri: using it as it is," \
      "with its own configuration (qemu.conf untouched)"
    foreign_libvirtd=1
    return 0
  fi
  write_qemu_conf
  write_libvirtd_conf
  if [[ -n $pid ]]; then
    ((qemu_conf_changed)) || { vm_libvirtd_answers && return 0; }
    say "restarting libvirtd $pid (qemu.conf changed or it does not answer); guests keep running"
    vm_stop "$pid" 10 || die "libvirtd $pid did not stop"
  fi
  mkdir -p /run/libvirt /var/lib/libvirt/qemu /var/cache/libvirt/qemu /var/log/libvirt/qemu
  # A clean environment: nothing of the caller's (LIBVIRT_*, TMPDIR, ...) leaks into the daemon.
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C \
    libvirtd -d -f "$vm_run_dir/libvirtd.conf" -p "$vm_run_dir/libvirtd.pid"
  # The first start probes QEMU's capabilities (~8 s); later starts read them from the cache.
  for _ in $(seq 600); do
    vm_libvirtd_answers && return 0
    sleep 0.2
  done
  tail -n 20 "$vm_run_dir/libvirtd.log" >&2 || true
  die "libvirtd did not answer on $vm_uri within 120 s (log: $vm_run_dir/libvirtd.log)"
}

# The newest Debian kernel in /boot that has its modules installed.
guest_kernel_version() {
  local image version best=
  for image in /boot/vmlinuz-*; do
    version=${image#/boot/vmlinuz-}
    [[ -f /lib/modules/$version/modules.dep ]] || continue
    if [[ -z $best ]] || [[ $(printf '%s\n%s\n' "$best" "$version" | sort -V | tail -n 1) == "$version" ]]; then
      best=$version
    fi
  done
  [[ -n $best ]] || die "no kernel in /boot with modules in /lib/modules (package linux-image-amd64)"
  echo "$best"
}

# The guest's PID 1: a busybox shell script. Settings come from /etc/guest.conf.
write_guest_init() {
  cat >"$1/init" <<'EOF'
#!/bin/busybox sh
# PID 1 of palisade's test guest (scripts/libvirt-up.sh). Everything here is busybox.
/bin/busybox --install -s /bin
export PATH=/bin
. /etc/guest.conf
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /mnt/disk
mount -t devpts devpts /dev/pts
# Kernel messages would interleave with command output on the console the tests read.
dmesg -n 1
while read -r module; do
  insmod "/lib/modules/$module" 2>/dev/null || echo "init: $module not loaded"
done </lib/modules/load-order
hostname "$GUEST_HOSTNAME"

# libvirt's shutdown presses the ACPI power button: acpid runs /etc/acpi/PWRF/00000080.
acpid || echo "init: acpid did not start"

ip link set lo up
# eth0 (PCI slot 3): the user-mode NIC, QEMU's built-in NAT.
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
# eth1 (PCI slot 4): the tap NIC; its host end carries the libvirt net.* counters. IPv6
# link-local addresses only (see docs/hypervisor-testenv.md).
ip link set eth1 up

for _ in 1 2 3 4 5 6 7 8 9 10; do
  [ -b /dev/vda1 ] && break
  sleep 0.2
done
mount -t ext4 -o ro /dev/vda1 /mnt/disk || echo "init: /dev/vda1 not mounted"

echo "$READY_MARKER"
export PS1='guest# '
while :; do setsid cttyhack sh; done
EOF
  chmod 0755 "$1/init"
}

build_initramfs() {
  local kver=$1 out=$2 root
  root=$(mktemp -d "$vm_guest_dir.initramfs.XXXXXX")
  mkdir -p "$root"/{bin,dev,proc,sys,etc/acpi/PWRF,lib/modules,var/log}
  ln -s ../run "$root/var/run"
  cp /bin/busybox "$root/bin/busybox"
  write_guest_init "$root"
  cat >"$root/etc/guest.conf" <<EOF
GUEST_HOSTNAME=$vm_domain
READY_MARKER=$ready_marker
EOF
  printf '#!/bin/sh\nsync\npoweroff -f\n' >"$root/etc/acpi/PWRF/00000080"
  chmod 0755 "$root/etc/acpi/PWRF/00000080"
  # The modules with everything they need, in load order (modprobe lists dependencies first).
  local module file
  for module in virtio_pci virtio_blk virtio_net virtio_balloon ext4 button evdev; do
    modprobe -S "$kver" --show-depends "$module" | awk '$1 == "insmod" { print $2 }'
  done | awk '!seen[$0]++' | while read -r file; do
    local name=${file##*/}
    case $name in
      *.ko.xz) xz -dc "$file" >"$root/lib/modules/${name%.xz}" ;;
      *.ko.zst) zstd -qdc "$file" >"$root/lib/modules/${name%.zst}" ;;
      *) cp "$file" "$root/lib/modules/$name" ;;
    esac
    echo "${name%.ko*}.ko" >>"$root/lib/modules/load-order"
  done
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 >"$out"
  rm -rf "$root"
}

# A small root filesystem that looks like an installed Debian system, for libguestfs inspection.
populate_disk_root() {
  local root=$1
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,root,home,usr/bin,usr/sbin,var/log,var/lib/dpkg}
  mkdir -p "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  local tool
  for tool in sh ls cat echo mount sleep; do ln -s busybox "$root/bin/$tool"; done
  ln -s ../bin/busybox "$root/sbin/init"
  cat >"$root/etc/os-release" <<'EOF'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
EOF
  echo 12.11 >"$root/etc/debian_version"
  echo "$vm_domain" >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$vm_domain" >"$root/etc/hosts"
  echo "LABEL=palisade-root / ext4 defaults 0 1" >"$root/etc/fstab"
  printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n' \
    >"$root/etc/passwd"
  printf 'root:x:0:\ndaemon:x:1:\n' >"$root/etc/group"
  printf 'root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n' >"$root/etc/shadow"
  chmod 0640 "$root/etc/shadow"
  printf 'Package: busybox-static\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n\n' \
    "$(dpkg-query -W -f='${Version}' busybox-static)" >"$root/var/lib/dpkg/status"
}

# A 64 MiB disk: an MBR with one ext4 partition, made without loop devices or mounts.
build_disk() {
  local out=$1 work
  work=$(mktemp -d "$vm_guest_dir.disk.XXXXXX")
  populate_disk_root "$work/root"
  local part_sectors=$(((64 - 1) * 2048))
  truncate -s 64M "$work/disk.raw"
  echo "start=2048, size=$part_sectors, type=83" | sfdisk -q --label dos "$work/disk.raw"
  truncate -s $((part_sectors * 512)) "$work/part.img"
  mkfs.ext4 -q -F -L palisade-root -E root_owner=0:0 -d "$work/root" "$work/part.img"
  dd if="$work/part.img" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
  qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$out"
  rm -rf "$work"
}

# What the guest is made from: the code above, the kernel and busybox. A change rebuilds it.
guest_inputs() {
  local kver=$1
  declare -f write_guest_init build_initramfs populate_disk_root build_disk
  echo "$kver $ready_marker"
  stat -c '%n %s %Y' "/boot/vmlinuz-$kver" /bin/busybox "/lib/modules/$kver/modules.dep"
}

build_guest() {
  local kver stamp
  kver=$(guest_kernel_version)
  stamp=$(guest_inputs "$kver" | sha256sum | cut -d' ' -f1)
  if [[ $(cat "$vm_guest_dir/stamp" 2>/dev/null) == "$stamp" && -f $vm_guest_dir/disk.qcow2 ]]; then
    return 0
  fi
  say "building the guest (kernel $kver)"
  local next=$vm_guest_dir.next
  rm -rf "$next" "$vm_guest_dir".initramfs.* "$vm_guest_dir".disk.*
  mkdir -p "$next"
  cp "/boot/vmlinuz-$kver" "$next/vmlinuz"
  build_initramfs "$kver" "$next/initrd.gz"
  build_disk "$next/disk.qcow2"
  echo "$stamp" >"$next/stamp"
  # A running guest keeps its open disk; the domain stage restarts it on the new files.
  rm -rf "$vm_guest_dir"
  mv "$next" "$vm_guest_dir"
}

# libguestfs builds its appliance (supermin, ~25 s) on first use and caches it: do that once
# here, in the background while the guest boots, instead of inside a test's time limit.
guestfs_warmup_pid=
start_guestfs_warmup() {
  if [[ -f $guestfs_cache/.guestfs-0/appliance.d/root ]]; then
    return 0
  fi
  say "building the libguestfs appliance in $guestfs_cache/.guestfs-0 (once per machine)"
  LIBGUESTFS_CACHEDIR=$guestfs_cache LIBGUESTFS_BACKEND=direct \
    LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish --ro -a /dev/null run \
    >"$vm_run_dir/guestfs-warmup.log" 2>&1 &
  guestfs_warmup_pid=$!
}

finish_guestfs_warmup() {
  [[ -n $guestfs_warmup_pid ]] || return 0
  wait "$guestfs_warmup_pid" || {
    tail -n 30 "$vm_run_dir/guestfs-warmup.log" >&2
    die "the libguestfs appliance did not start (log: $vm_run_dir/guestfs-warmup.log)"
  }
}

domain_xml() {
  cat <<EOF
<domain type='qemu'>
  <!-- software emulation (TCG): /dev/kvm exists on the test machines but KVM guests hang -->
  <name>$vm_domain</name>
  <uuid>3d1c0a2e-6f5b-4c1e-9a57-5a11ade7e571</uuid>
  <metadata>
    <palisade:labels xmlns:palisade="https://palisade.dev/xmlns/libvirt/1">
      <palisade:label key="tier">test</palisade:label>
      <palisade:label key="owner">palisade-ci</palisade:label>
    </palisade:labels>
  </metadata>
  <memory unit='MiB'>256</memory>
  <currentMemory unit='MiB'>256</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$vm_guest_dir/vmlinuz</kernel>
    <initrd>$vm_guest_dir/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$vm_guest_dir/disk.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'>
      <mac address='$user_mac'/>
      <model type='virtio'/>
      <link state='up'/>
      <rom enabled='no'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </interface>
    <interface type='ethernet'>
      <mac address='$tap_mac'/>
      <target dev='$vm_tap_dev' managed='yes'/>
      <model type='virtio'/>
      <link state='up'/>
      <rom enabled='no'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </interface>
    <serial type='pty'>
      <log file='$vm_run_dir/console.log' append='off'/>
      <target port='0'/>
    </serial>
    <console type='pty'>
      <target type='serial' port='0'/>
    </console>
    <memballoon model='virtio'>
      <stats period='2'/>
    </memballoon>
  </devices>
</domain>
EOF
}

# Why the defined domain must be replaced, or nothing when it can stay.
domain_replace_reason() {
  local stamp=$1
  vsh domstate "$vm_domain" >/dev/null 2>&1 || return 0
  if [[ $(cat "$vm_run_dir/domain.stamp" 2>/dev/null) != "$stamp" ]]; then
    echo "its definition or the guest changed"
  elif ! vsh domblklist "$vm_domain" | grep -q "^ *vda  *$vm_guest_dir/disk.qcow2\$"; then
    echo "its disk is no longer $vm_guest_dir/disk.qcow2 (a snapshot overlay?)"
  fi
}

ensure_domain() {
  local xml=$vm_guest_dir/$vm_domain.xml stamp reason state
  domain_xml >"$xml"
  stamp=$(cat "$xml" "$vm_guest_dir/stamp" | sha256sum | cut -d' ' -f1)
  reason=$(domain_replace_reason "$stamp")
  if [[ -n $reason ]] || ! vsh domstate "$vm_domain" >/dev/null 2>&1; then
    if vsh domstate "$vm_domain" >/dev/null 2>&1; then
      say "replacing $vm_domain: $reason"
      vsh destroy "$vm_domain" >/dev/null 2>&1 || true
      vsh undefine --snapshots-metadata "$vm_domain" >/dev/null
      # Overlays libvirt made next to the disk for external snapshots (disk.<snapshot>).
      find "$vm_guest_dir" -maxdepth 1 -name 'disk.*' ! -name disk.qcow2 -delete
    fi
    vsh define "$xml" >/dev/null
    echo "$stamp" >"$vm_run_dir/domain.stamp"
  fi
  state=$(vsh domstate "$vm_domain")
  case $state in
    running) ;;
    paused)
      say "resuming the paused $vm_domain"
      vsh resume "$vm_domain" >/dev/null
      ;;
    *)
      rm -f "$vm_run_dir/console.log"
      if ! vsh start "$vm_domain" >/dev/null; then
        ((foreign_libvirtd)) && say "the libvirtd in use was not started by this script: its" \
          "qemu.conf needs the settings this script writes (docs/hypervisor-testenv.md)"
        die "cannot start $vm_domain"
      fi
      say "started $vm_domain"
      ;;
  esac
  # A test that failed half-way may have left a NIC unplugged.
  local mac
  for mac in "$user_mac" "$tap_mac"; do
    if [[ $(vsh domif-getlink "$vm_domain" "$mac" | awk '{print $2}') != up ]]; then
      say "setting the link of $mac up again"
      vsh domif-setlink "$vm_domain" "$mac" up >/dev/null
    fi
  done
}

wait_until_ready() {
  local log=$vm_run_dir/console.log
  for _ in $(seq 900); do
    grep -qa "^$ready_marker" "$log" 2>/dev/null && return 0
    sleep 0.2
  done
  tail -n 30 "$log" >&2 || true
  die "the guest printed no $ready_marker within 180 s (console log: $log)"
}

# The IPv6 link-local address an interface with this MAC gives itself (modified EUI-64).
link_local() {
  local -a b
  IFS=: read -ra b <<<"$1"
  printf 'fe80::%x:%x:%x:%x\n' $(((0x${b[0]} ^ 2) << 8 | 0x${b[1]})) $((0x${b[2]} << 8 | 0xff)) \
    $((0xfe << 8 | 0x${b[3]})) $((0x${b[4]} << 8 | 0x${b[5]}))
}

write_env_file() {
  cat >"$vm_env_file.tmp" <<EOF
# The real-libvirt test environment, written by scripts/libvirt-up.sh: source it before ctest.
export PALISADE_VM_DIR=$vm_dir
export PALISADE_TEST_LIBVIRT_URI=$vm_uri
export PALISADE_TEST_DOMAIN=$vm_domain
export PALISADE_TEST_DISK=$vm_guest_dir/disk.qcow2
export PALISADE_TEST_CONSOLE_LOG=$vm_run_dir/console.log
# user-mode NIC (guest eth0): no host device, so addressed by MAC; no net.* counters
export PALISADE_TEST_MAC=$user_mac
# tap NIC (guest eth1, host device $vm_tap_dev): IPv6 link-local addresses only; the host reaches
# the guest at [GUEST_IP6%$vm_tap_dev], the guest the host with ping6 -I eth1 HOST_IP6
export PALISADE_TEST_TAP_MAC=$tap_mac
export PALISADE_TEST_TAP_DEV=$vm_tap_dev
export PALISADE_TEST_TAP_GUEST_IP6=$(link_local "$tap_mac")
export PALISADE_TEST_TAP_HOST_IP6=$(link_local "fe${tap_mac#52}")
# libguestfs would pick KVM, which hangs here; the appliance cache is the one warmed up above.
export LIBGUESTFS_BACKEND=direct
export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
export LIBGUESTFS_CACHEDIR=$guestfs_cache
EOF
  mv "$vm_env_file.tmp" "$vm_env_file"
}

main() {
  local start=${EPOCHREALTIME/./}
  check_host
  stage packages install_packages
  stage libvirtd start_libvirtd
  stage guest build_guest
  start_guestfs_warmup
  stage domain ensure_domain
  stage boot wait_until_ready
  stage guestfs finish_guestfs_warmup
  write_env_file
  local us=$((${EPOCHREALTIME/./} - start))
  say "ready in $((us / 1000000)).$((us / 100000 % 10))s: source $vm_env_file"
}

main "$@"

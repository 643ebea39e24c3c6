// Virtual machines as the hypervisor monitor (palisade hv) sees them through libvirt: what a VM
// event carries, and what policies select VMs by. Part of the event model so that VM events go
// through the same formatter, store, outputs and policy engine as the node agent's.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace palisade {

struct VmDisk {
  std::string target;  // guest device name: vda, sda
  std::string device;  // disk, cdrom
  std::string type;    // file, block, network
  std::string source;  // the image path (or volume, or network name)
  std::string format;  // qcow2, raw (the driver's type attribute)
  bool read_only = false;
};

struct VmNic {
  std::string mac;
  std::string type;    // network, bridge, user, ethernet, direct
  std::string source;  // the network or bridge name
  std::string target;  // host-side device (vnet0), when the VM runs and has one
  std::string model;
  bool link_up = true;
};

struct VmView {
  std::string host;        // the libvirt URI it was seen through
  std::string hypervisor;  // the driver: QEMU, Test
  std::string name;
  std::string uuid;
  std::string state;  // running, paused, shutoff, crashed, pmsuspended, blocked, shutdown, ...
  uint32_t vcpus = 0;
  uint64_t memory_kib = 0;  // current allocation
  bool persistent = true;
  std::vector<VmDisk> disks;
  std::vector<VmNic> nics;
  // From the domain XML <metadata><palisade:labels xmlns:palisade=".../libvirt/1"> element:
  // key=value pairs, sorted by key. Policies select VMs by them.
  std::vector<std::pair<std::string, std::string>> labels;

  const std::string* label(std::string_view key) const;
};
using VmRef = std::shared_ptr<const VmView>;

// The namespace of palisade's element in a domain's <metadata>.
inline constexpr std::string_view kVmLabelNamespace = "https://palisade.dev/xmlns/libvirt/1";

// What a VM event says beyond the VM itself.
struct VmActivity {
  // vm_lifecycle: defined, undefined, started, suspended, resumed, stopped, shutdown, crashed,
  //   pmsuspended, migrated; vm_host: connected, lost, restored; vm_inventory: present,
  //   configured; vm_guest_change: the change kind (user-added, ...); vm_inspection: completed,
  //   failed; vm_stats: sample.
  std::string action;
  std::string detail;  // lifecycle detail (booted, migrated, destroyed, ...) or change subject
  std::string message;
  // vm_stats: rates over the last interval.
  uint64_t interval_ms = 0;
  int64_t cpu_percent = -1;  // of the VM's vCPUs together (0-100); -1 when unknown
  int64_t net_rx_bps = -1;   // bytes per second, from the guest's point of view
  int64_t net_tx_bps = -1;
  int64_t disk_read_bps = -1;
  int64_t disk_write_bps = -1;
  int64_t balloon_rss_kib = -1;
  // vm_guest_change: the item before and after, as JSON objects ("" when absent).
  std::string before_json;
  std::string after_json;
};

}  // namespace palisade

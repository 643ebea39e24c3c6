// VirtualMachinePolicy: what the hypervisor monitor (palisade hv) watches on the VMs a selector
// picks by name, host and the labels in their domain XML <metadata>: behaviour seen from outside
// (sustained CPU saturation, egress far above the VM's learned baseline, disk-write bursts) with
// thresholds and learning windows, guest-disk inspection on a schedule, and the response each
// detection asks for. In audit mode responses are reported as what would have been done.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "palisade/model/vm_view.h"
#include "palisade/policies/workload_policy.h"

namespace palisade::policies {

struct DetectionRule;  // policy_set.h
enum class Response : uint8_t;
enum class Severity : uint8_t;

struct VmSelector {
  std::vector<std::string> names;             // globs on the domain name; empty = any
  std::vector<std::string> hosts;             // globs on the libvirt URI; empty = any
  std::map<std::string, std::string> labels;  // exact key = value, all required
  bool matches(const VmView& vm) const;
};

// A rate that stays beyond its threshold for `sustained_ns` (every sample in that span).
struct VmDetection {
  bool enabled = false;
  uint64_t sustained_ns = 0;
  // How a detection is reported: a rule made when the policy compiles, named
  // "vm-policy/<policy>/<detection>", whose response is the configured one in enforce mode and
  // alert in audit mode.
  std::shared_ptr<const DetectionRule> rule;
  Response configured_response{};  // as written, whatever the mode
};

struct CpuSaturation : VmDetection {
  int64_t percent = 90;  // of all the VM's vCPUs together
};

// Outbound traffic far above what the VM usually sends: the baseline is an average learned over
// `learning_ns` of samples before the detection arms, and keeps learning from normal samples.
struct EgressSpike : VmDetection {
  double factor = 10;
  int64_t min_bytes_per_second = 1 << 20;  // never fire below this, whatever the baseline
  uint64_t learning_ns = 3'600'000'000'000ULL;
};

struct DiskWriteBurst : VmDetection {
  int64_t bytes_per_second = 50LL << 20;
};

struct VmInspectionSpec {
  bool enabled = false;
  uint64_t interval_ns = 24ULL * 3'600'000'000'000ULL;
  // snapshot: an external disk-only snapshot freezes the disks for the inspection and is merged
  // back after it (running VMs); live: the running VM's disks opened read-only as they are.
  std::string method = "snapshot";
  std::vector<std::string> paths;  // the guest file-integrity baseline's roots; empty = default
  uint64_t time_limit_ns = 600'000'000'000ULL;
};

struct VmPolicy {
  std::string name;
  std::string source;
  int line = 0;
  Mode mode = Mode::kAudit;
  VmSelector selector;
  CpuSaturation cpu;
  EgressSpike egress;
  DiskWriteBurst disk_writes;
  VmInspectionSpec inspection;
};

}  // namespace palisade::policies

// Behaviour seen from outside the guest: cumulative counters from libvirt's bulk stats turned into
// rates, and the VirtualMachinePolicy detections judged on them (sustained CPU saturation, egress
// far above the VM's learned baseline, disk-write bursts). Pure logic: no libvirt calls, so tests
// feed it samples directly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "palisade/model/vm_view.h"
#include "palisade/policies/policy_set.h"

namespace palisade::hypervisor {

// One VM's cumulative counters at one moment (absent when the hypervisor does not report them).
struct StatsCounters {
  std::string uuid;
  uint64_t time_ns = 0;  // monotonic, when collected
  uint32_t vcpus = 0;
  std::optional<uint64_t> cpu_time_ns;
  std::optional<uint64_t> net_rx_bytes;  // summed over the VM's interfaces
  std::optional<uint64_t> net_tx_bytes;
  std::optional<uint64_t> disk_read_bytes;  // summed over its disks
  std::optional<uint64_t> disk_write_bytes;
  std::optional<uint64_t> balloon_rss_kib;
};

// Rates between consecutive samples of each VM. Bounded: at most max_vms VMs are remembered;
// beyond that the oldest sample set is dropped (the VM's next sample starts over).
class RateTracker {
 public:
  explicit RateTracker(size_t max_vms = 10000) : max_vms_(max_vms) {}
  // The rates since this VM's previous sample; none for its first sample, after a gap of more
  // than `max_gap_ns`, or when a counter went backwards (the VM restarted).
  std::optional<VmActivity> update(const StatsCounters& now, uint64_t max_gap_ns);
  void forget(const std::string& uuid) { last_.erase(uuid); }
  size_t size() const { return last_.size(); }
  uint64_t evictions() const { return evictions_; }

 private:
  size_t max_vms_;
  std::unordered_map<std::string, StatsCounters> last_;
  uint64_t evictions_ = 0;
};

struct BehaviourFinding {
  const policies::VmPolicy* policy = nullptr;
  const policies::DetectionRule* rule = nullptr;
  policies::Response configured = policies::Response::kAlert;
  std::string message;
};

// Judges samples against the VirtualMachinePolicies that select the VM. A detection fires once
// when its condition has held for its `for` duration and re-arms when a sample falls back below.
class BehaviourDetector {
 public:
  // At most max_tracks (policy, VM) pairs are followed; beyond it the one sampled longest ago is
  // dropped (counted).
  explicit BehaviourDetector(size_t max_tracks = 100000) : max_tracks_(max_tracks) {}
  void judge(const VmView& vm, const VmActivity& rates, uint64_t now_ns,
             const std::vector<std::unique_ptr<policies::VmPolicy>>& policies,
             std::vector<BehaviourFinding>& out);
  void forget(const std::string& uuid);
  // On a policy reload: the state of policies no longer there goes.
  void keep_only(const std::vector<std::string>& policy_names);
  uint64_t evictions() const { return evictions_; }
  // The egress baseline learned for a VM under a policy (bytes/s), for status and tests.
  std::optional<double> egress_baseline(const std::string& policy, const std::string& uuid) const;

 private:
  struct Sustained {
    uint64_t above_since = 0;  // 0: the last sample was below
    bool fired = false;
    // Whether the detection fires now, given whether this sample is above its threshold.
    bool step(bool above, uint64_t sample_start_ns, uint64_t now_ns, uint64_t sustained_ns);
  };
  struct Track {
    uint64_t last_sample_ns = 0;
    Sustained cpu;
    Sustained disk;
    Sustained egress;
    uint64_t learning_started_ns = 0;
    double baseline_bps = 0;
    uint64_t baseline_samples = 0;
  };
  Track& track(const std::string& key);

  size_t max_tracks_;
  std::unordered_map<std::string, Track> tracks_;  // policy name + '/' + VM uuid
  uint64_t evictions_ = 0;
};

}  // namespace palisade::hypervisor

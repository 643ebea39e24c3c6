#include "palisade/hypervisor/behaviour.h"

#include <algorithm>
#include <cstdio>

namespace palisade::hypervisor {
namespace {

// A per-second rate from two cumulative readings; -1 when either is missing or it went back.
int64_t rate(const std::optional<uint64_t>& before, const std::optional<uint64_t>& after,
             uint64_t span_ns) {
  if (!before || !after || *after < *before || span_ns == 0) return -1;
  const double per_second =
      static_cast<double>(*after - *before) * 1e9 / static_cast<double>(span_ns);
  return static_cast<int64_t>(per_second);
}

bool went_back(const std::optional<uint64_t>& before, const std::optional<uint64_t>& after) {
  return before && after && *after < *before;
}

std::string human_rate(double bytes_per_second) {
  char buf[32];
  if (bytes_per_second >= 1 << 20) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB/s", bytes_per_second / (1 << 20));
  } else if (bytes_per_second >= 1 << 10) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB/s", bytes_per_second / (1 << 10));
  } else {
    std::snprintf(buf, sizeof(buf), "%.0f B/s", bytes_per_second);
  }
  return buf;
}

std::string seconds(uint64_t ns) {
  return std::to_string(ns / 1'000'000'000ULL) + "s";
}

}  // namespace

std::optional<VmActivity> RateTracker::update(const StatsCounters& now, uint64_t max_gap_ns) {
  auto it = last_.find(now.uuid);
  if (it == last_.end()) {
    if (last_.size() >= max_vms_) {
      // Drop the VM sampled longest ago: it is the likeliest to be gone.
      auto oldest = std::min_element(last_.begin(), last_.end(), [](const auto& a, const auto& b) {
        return a.second.time_ns < b.second.time_ns;
      });
      last_.erase(oldest);
      evictions_++;
    }
    last_.emplace(now.uuid, now);
    return std::nullopt;
  }
  const StatsCounters before = it->second;
  it->second = now;
  const uint64_t span = now.time_ns > before.time_ns ? now.time_ns - before.time_ns : 0;
  if (span == 0 || span > max_gap_ns || went_back(before.cpu_time_ns, now.cpu_time_ns)) {
    return std::nullopt;
  }
  VmActivity a;
  a.action = "sample";
  a.interval_ms = span / 1'000'000ULL;
  const int64_t cpu_ns_per_s = rate(before.cpu_time_ns, now.cpu_time_ns, span);
  if (cpu_ns_per_s >= 0 && now.vcpus > 0) {  // without the vCPU count a percentage would lie
    a.cpu_percent = std::min<int64_t>(100, cpu_ns_per_s / (10'000'000LL * now.vcpus));
  }
  a.net_rx_bps = rate(before.net_rx_bytes, now.net_rx_bytes, span);
  a.net_tx_bps = rate(before.net_tx_bytes, now.net_tx_bytes, span);
  a.disk_read_bps = rate(before.disk_read_bytes, now.disk_read_bytes, span);
  a.disk_write_bps = rate(before.disk_write_bytes, now.disk_write_bytes, span);
  a.balloon_rss_kib = now.balloon_rss_kib ? static_cast<int64_t>(*now.balloon_rss_kib) : -1;
  return a;
}

bool BehaviourDetector::Sustained::step(bool above, uint64_t sample_start_ns, uint64_t now_ns,
                                        uint64_t sustained_ns) {
  if (!above) {
    above_since = 0;
    fired = false;
    return false;
  }
  if (above_since == 0) above_since = std::max<uint64_t>(sample_start_ns, 1);
  if (fired || now_ns - above_since < sustained_ns) return false;
  fired = true;
  return true;
}

void BehaviourDetector::judge(const VmView& vm, const VmActivity& rates, uint64_t now_ns,
                              const std::vector<std::unique_ptr<policies::VmPolicy>>& policies,
                              std::vector<BehaviourFinding>& out) {
  const uint64_t start = now_ns - std::min<uint64_t>(now_ns, rates.interval_ms * 1'000'000ULL);
  for (const auto& policy : policies) {
    if (!policy->selector.matches(vm)) continue;
    Track& t = track(policy->name + "/" + vm.uuid);
    // A gap in the samples (the host was away, stats failed) breaks every sustained window: what
    // happened in between is not known to have stayed above.
    if (t.last_sample_ns != 0 && start > t.last_sample_ns + rates.interval_ms * 1'000'000ULL) {
      t.cpu = t.disk = t.egress = Sustained{};
    }
    t.last_sample_ns = now_ns;
    auto report = [&](const policies::VmDetection& d, std::string message) {
      out.push_back(
          BehaviourFinding{policy.get(), d.rule.get(), d.configured_response, std::move(message)});
    };
    if (policy->cpu.enabled && rates.cpu_percent >= 0 &&
        t.cpu.step(rates.cpu_percent >= policy->cpu.percent, start, now_ns,
                   policy->cpu.sustained_ns)) {
      report(policy->cpu, "VM " + vm.name + ": CPU at " + std::to_string(rates.cpu_percent) +
                              "% of " + std::to_string(std::max<uint32_t>(vm.vcpus, 1)) +
                              " vCPU(s) for " + seconds(policy->cpu.sustained_ns) + " (threshold " +
                              std::to_string(policy->cpu.percent) + "%)");
    }
    if (policy->disk_writes.enabled && rates.disk_write_bps >= 0 &&
        t.disk.step(rates.disk_write_bps >= policy->disk_writes.bytes_per_second, start, now_ns,
                    policy->disk_writes.sustained_ns)) {
      report(policy->disk_writes,
             "VM " + vm.name + ": disk writes at " +
                 human_rate(static_cast<double>(rates.disk_write_bps)) + " for " +
                 seconds(policy->disk_writes.sustained_ns) + " (threshold " +
                 human_rate(static_cast<double>(policy->disk_writes.bytes_per_second)) + ")");
    }
    if (policy->egress.enabled && rates.net_tx_bps >= 0) {
      const auto& e = policy->egress;
      const double tx = static_cast<double>(rates.net_tx_bps);
      if (t.learning_started_ns == 0) t.learning_started_ns = std::max<uint64_t>(start, 1);
      const bool learning = now_ns - t.learning_started_ns < e.learning_ns;
      const double limit =
          std::max(static_cast<double>(e.min_bytes_per_second), e.factor * t.baseline_bps);
      const bool above = !learning && tx >= limit;
      if (!above) {
        // The baseline follows normal traffic: an average over the learning window's span.
        t.baseline_samples++;
        const double weight = learning
                                  ? 1.0 / static_cast<double>(t.baseline_samples)
                                  : std::min(1.0, static_cast<double>(rates.interval_ms) * 1e6 /
                                                      static_cast<double>(e.learning_ns));
        t.baseline_bps += (tx - t.baseline_bps) * weight;
      }
      if (t.egress.step(above, start, now_ns, e.sustained_ns)) {
        report(e, "VM " + vm.name + ": outbound traffic at " + human_rate(tx) + " for " +
                      seconds(e.sustained_ns) + ", " +
                      std::to_string(static_cast<int64_t>(tx / std::max(t.baseline_bps, 1.0))) +
                      "x its baseline of " + human_rate(t.baseline_bps) + " (threshold " +
                      human_rate(limit) + ")");
      }
    }
  }
}

BehaviourDetector::Track& BehaviourDetector::track(const std::string& key) {
  auto it = tracks_.find(key);
  if (it != tracks_.end()) return it->second;
  if (tracks_.size() >= max_tracks_) {
    auto oldest =
        std::min_element(tracks_.begin(), tracks_.end(), [](const auto& a, const auto& b) {
          return a.second.last_sample_ns < b.second.last_sample_ns;
        });
    tracks_.erase(oldest);
    evictions_++;
  }
  return tracks_.emplace(key, Track{}).first->second;
}

void BehaviourDetector::keep_only(const std::vector<std::string>& policy_names) {
  std::erase_if(tracks_, [&](const auto& kv) {
    const std::string name = kv.first.substr(0, kv.first.rfind('/'));
    return std::find(policy_names.begin(), policy_names.end(), name) == policy_names.end();
  });
}

void BehaviourDetector::forget(const std::string& uuid) {
  std::erase_if(tracks_, [&](const auto& kv) {
    return kv.first.size() > uuid.size() &&
           kv.first.compare(kv.first.size() - uuid.size(), uuid.size(), uuid) == 0;
  });
}

std::optional<double> BehaviourDetector::egress_baseline(const std::string& policy,
                                                         const std::string& uuid) const {
  auto it = tracks_.find(policy + "/" + uuid);
  if (it == tracks_.end() || it->second.baseline_samples == 0) return std::nullopt;
  return it->second.baseline_bps;
}

}  // namespace palisade::hypervisor

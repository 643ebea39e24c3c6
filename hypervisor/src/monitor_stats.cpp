// Bulk stats every interval and the behaviour judgements of the VirtualMachinePolicies on them.
#include <spdlog/spdlog.h>

#include "monitor_impl.h"

namespace palisade::hypervisor {

void Monitor::Impl::collect_stats() {
  const bool have_vm_policies = policy && !policy->vm_policies().empty();
  for (size_t i = 0; i < hosts.size(); ++i) {
    HostState& host = hosts[i];
    auto conn = sessions[i]->connection();
    if (!host.connected || !conn) continue;
    std::vector<StatsCounters> samples;
    std::string error;
    if (!collect_domain_stats(*conn, samples, error)) {
      counters.stats_errors++;
      spdlog::debug("hv: {}: stats: {}", host.uri, error);
      continue;
    }
    const uint64_t max_gap = uint64_t{options.stats_interval_ms} * 3'000'000ULL;
    for (auto& s : samples) {
      counters.stats_samples++;
      // Only VMs in the inventory are followed: one beyond max_domains would cost lookups on
      // every round (counted in the host's uncached_domains instead).
      auto it = host.domains.find(s.uuid);
      if (it == host.domains.end()) {
        counters.stats_uncached++;
        continue;
      }
      const VmRef& vm = it->second;
      if (s.vcpus == 0) s.vcpus = vm->vcpus;  // no vcpu.current: the definition's count
      auto activity = rates.update(s, max_gap);
      if (!activity) continue;
      Event e;
      e.kind = EventKind::kVmStats;
      e.vm = vm;
      e.vm_activity = std::move(*activity);
      emit(e, options.emit_stats);
      if (have_vm_policies) judge(e, s.time_ns);
    }
  }
}

void Monitor::Impl::judge(const Event& sample, uint64_t now_ns) {
  std::vector<BehaviourFinding> found;
  behaviour.judge(*sample.vm, sample.vm_activity, now_ns, policy->vm_policies(), found);
  for (const auto& f : found) {
    const bool enforce = f.policy->mode == policies::Mode::kEnforce;
    std::string verdict;
    if (f.configured != policies::Response::kAlert) {
      verdict = std::string(enforce ? "" : "would ") +
                std::string(policies::response_name(f.configured)) +
                (enforce ? " (enforce)" : " (audit)");
    }
    detector->raise(*f.rule, f.message, sample, verdict);
  }
}

}  // namespace palisade::hypervisor

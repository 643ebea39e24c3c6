// `palisade hv`'s Prometheus metrics (docs/metrics.md): per followed host (a label bounded by
// the configuration), the monitor's own counters, its detector's and its outputs'.
#include "monitor_impl.h"

namespace palisade::hypervisor {
namespace {

double n(uint64_t value) {
  return static_cast<double>(value);
}

}  // namespace

void Monitor::Impl::publish_metrics() {
  metrics::Snapshot s;
  s.gauge("palisade_build_info", "The agent's version (value 1)", 1,
          {{"version", PALISADE_VERSION}, {"component", "hv"}});
  s.gauge("palisade_start_time_seconds", "When the agent started (Unix time)",
          n(started_wall_ns) / 1e9);
  for (size_t i = 0; i < hosts.size(); ++i) {
    const SessionCounters c = sessions.size() > i ? sessions[i]->counters() : SessionCounters{};
    const metrics::Labels host{{"host", hosts[i].uri}};
    s.gauge("palisade_hv_host_connected", "1 while the libvirt host is connected",
            hosts[i].connected ? 1 : 0, host);
    s.gauge("palisade_hv_domains", "VMs known on the host", n(hosts[i].domains.size()), host);
    s.gauge("palisade_hv_uncached_domains", "VMs followed beyond hypervisor.max_domains",
            n(hosts[i].uncached), host);
    s.counter("palisade_hv_host_connects_total", "Connections made to the host", n(c.connects),
              host);
    s.counter("palisade_hv_host_losses_total", "Connections to the host that were lost",
              n(c.losses), host);
    s.counter("palisade_hv_host_failed_attempts_total", "Connection attempts that failed",
              n(c.failed_attempts), host);
  }
  s.counter("palisade_hv_events_total", "VM events emitted", n(emitter->count()));
  s.counter("palisade_hv_stats_samples_total", "Bulk-stats samples taken",
            n(counters.stats_samples));
  s.counter("palisade_hv_stats_errors_total", "Bulk-stats collections that failed",
            n(counters.stats_errors));
  s.counter("palisade_hv_notices_lost_total",
            "libvirt notices lost, by reason (the inventory is re-listed after a loss)",
            n(inbox.dropped()), {{"reason", "queue_full"}});
  s.counter("palisade_hv_rate_evictions_total", "VMs evicted from the bounded rate tracker",
            n(rates.evictions()));
  const nlohmann::json responses = responder.status();
  for (const char* outcome : {"carried_out", "failed", "refused"}) {
    s.counter("palisade_hv_responses_total", "VM responses, by outcome",
              n(responses.value(outcome, uint64_t{0})), {{"outcome", outcome}});
  }
  const nlohmann::json inspected = inspections ? inspections->status() : nlohmann::json::object();
  for (const char* outcome : {"completed", "failed", "skipped_queue_full"}) {
    s.counter("palisade_hv_inspections_total", "Guest-disk inspections, by outcome",
              n(inspected.value(outcome, uint64_t{0})), {{"outcome", outcome}});
  }
  s.gauge("palisade_hv_inspections_queued", "Inspections waiting for a worker",
          n(inspected.value("queued", uint64_t{0})));
  detector->add_metrics(s);
  if (outputs.output_metrics) outputs.output_metrics(s);
  outputs.metrics->publish(std::move(s));
}

}  // namespace palisade::hypervisor

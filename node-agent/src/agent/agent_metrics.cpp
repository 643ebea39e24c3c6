// The agent's Prometheus metrics (docs/metrics.md): the counters its status reports, refreshed
// from the main loop about once a second and served by the metrics endpoint's own threads.
#include <spdlog/spdlog.h>

#include "agent/agent_impl.h"
#include "palisade/base/proc.h"

namespace palisade::agent {
namespace {

double n(uint64_t value) {
  return static_cast<double>(value);
}

void add_event_metrics(metrics::Snapshot& s, const PipelineStats& stats,
                       const SourceCounters& source) {
  for (size_t i = 0; i < kEventClassCount; ++i) {
    const metrics::Labels of_class{{"class", std::string(class_name(static_cast<EventClass>(i)))}};
    s.counter("palisade_events_received_total", "Sensor records received, by event class",
              n(stats.classes[i].received), of_class);
    for (const auto& [reason, count] : {std::pair{"sequence_gap", stats.classes[i].lost},
                                        std::pair{"ring_buffer_full", source.kernel_drops[i]}}) {
      metrics::Labels labels = of_class;
      labels.emplace_back("reason", reason);
      s.counter("palisade_events_lost_total",
                "Events lost before the pipeline, by class and reason (the kernel could not queue "
                "them, or a gap in the per-CPU sequence showed they never arrived)",
                n(count), labels);
    }
  }
  s.counter("palisade_events_delivered_total", "Events handed to the outputs and the detector",
            n(stats.delivered));
  s.counter("palisade_events_filtered_total", "Events dropped by the path rules, by design",
            n(stats.filtered));
  s.counter("palisade_events_malformed_total", "Sensor records that did not decode",
            n(stats.malformed));
}

// Labelled by program name: a fixed set (the sensor's programs), not a per-workload label.
void add_kernel_time_metrics(metrics::Snapshot& s, const SourceCounters& source) {
  s.gauge("palisade_bpf_stats_enabled",
          "1 while the kernel accounts the sensor programs' run time (sensor.kernel_time_stats)",
          source.kernel_time_enabled ? 1 : 0);
  for (const ProgramRunStats& program : source.programs) {
    s.counter("palisade_bpf_program_runs_total", "Runs of each sensor eBPF program",
              n(program.runs), {{"program", program.name}});
    s.counter("palisade_bpf_program_run_seconds_total",
              "Kernel CPU time spent in each sensor eBPF program", n(program.run_time_ns) / 1e9,
              {{"program", program.name}});
  }
}

void add_process_table_metrics(metrics::Snapshot& s, const ProcessTableStats& t) {
  s.gauge("palisade_process_table_entries", "Processes tracked", n(t.entries));
  s.gauge("palisade_process_table_bytes", "Memory of the process table", n(t.bytes));
  s.counter("palisade_process_table_evictions_total",
            "Processes removed from the table: exited, or forced out by its hard cap",
            n(t.evicted_exited), {{"reason", "exited"}});
  s.counter("palisade_process_table_evictions_total",
            "Processes removed from the table: exited, or forced out by its hard cap",
            n(t.evicted_forced), {{"reason", "forced"}});
}

}  // namespace

// A metrics endpoint that cannot start (its port taken, a TLS file unreadable) is reported, in
// the log and the status, and the agent protects the host without it.
void Agent::start_metrics() {
  if (!config_.metrics_enabled || !options_.replay_path.empty()) return;  // a replay is offline
  try {
    metrics_ = metrics::Endpoint::start(config_.metrics);
    spdlog::info("metrics at {}", metrics_->url());
    publish_metrics();
  } catch (const std::exception& e) {
    metrics_error_ = e.what();
    spdlog::error("{}; the agent runs without its metrics endpoint", metrics_error_);
  }
}

void Agent::publish_metrics() {
  if (!metrics_) return;
  metrics::Snapshot s;
  s.gauge("palisade_build_info", "The agent's version (value 1)", 1,
          {{"version", PALISADE_VERSION}, {"component", "agent"}});
  s.gauge("palisade_start_time_seconds", "When the agent started (Unix time)",
          static_cast<double>(started_wall_ns_) / 1e9);
  const std::optional<base::ProcStatus> self = base::read_proc_status(0);
  s.gauge("palisade_resident_memory_bytes", "The agent's resident memory",
          self ? n(self->rss_kib * 1024) : 0);
  SourceCounters source = source_->counters();
  if (enforcer_)
    source.kernel_drops[static_cast<size_t>(EventClass::kEnforcement)] = enforcer_->lost();
  add_event_metrics(s, pipeline_->stats(), source);
  add_kernel_time_metrics(s, source);
  add_process_table_metrics(s, table_->stats());
  detector_->add_metrics(s);
  outputs_->add_metrics(s);
  add_container_metrics(s);
  add_enforcement_metrics(s);
  metrics_->publish(std::move(s));
}

void Agent::add_container_metrics(metrics::Snapshot& s) const {
  const ContainerRegistryStats registry = containers_->stats();
  const ResolverStats resolved = resolver_->stats();
  s.gauge("palisade_containers", "Containers known", n(registry.containers));
  s.counter("palisade_containers_rejected_total", "Containers not tracked: the registry was full",
            n(registry.rejected_full));
  for (const auto& [how, count] :
       {std::pair{"cgroup", resolved.by_cgroup}, std::pair{"cgroup_path", resolved.by_proc},
        std::pair{"pid_namespace", resolved.by_pid_ns},
        std::pair{"unresolved", resolved.unresolved}}) {
    s.counter("palisade_container_attributions_total",
              "Events attributed to a container, by how (unresolved: in a container the agent "
              "did not know yet)",
              n(count), {{"by", how}});
  }
  const ContainerdStatus containerd = containerd_ ? containerd_->status() : ContainerdStatus{};
  s.gauge("palisade_containerd_connected", "1 while the containerd watcher is connected",
          containerd.connected ? 1 : 0);
  s.counter("palisade_containerd_reconnects_total", "Reconnections to containerd",
            n(containerd.reconnects));
}

void Agent::add_enforcement_metrics(metrics::Snapshot& s) const {
  s.gauge("palisade_enforcement_active", "1 when enforcement is on", enforcer_ ? 1 : 0);
  const nlohmann::json status = enforcer_ ? enforcer_->status() : nlohmann::json::object();
  const std::string mechanism = status.value("exec_mechanism", "none");
  s.counter("palisade_enforcement_denials_total",
            "Operations the enforcement refused, by exec mechanism in use",
            n(status.value("denials", uint64_t{0})), {{"mechanism", mechanism}});
  const nlohmann::json write_guard = status.value("write_guard", nlohmann::json::object());
  s.counter("palisade_enforcement_denials_total",
            "Operations the enforcement refused, by exec mechanism in use",
            n(write_guard.value("denied", uint64_t{0})), {{"mechanism", "fanotify-write-guard"}});
  s.gauge("palisade_enforcement_errors", "Problems the last binding reported (see status)",
          n(status.value("errors", nlohmann::json::array()).size()));
  const bool canary_ran = last_canary_.is_object();
  s.gauge("palisade_enforcement_canary_passed",
          "1 when the last enforcement canary passed, 0 when it failed or has not run",
          canary_ran && last_canary_.value("passed", false) ? 1 : 0);
  s.gauge("palisade_enforcement_canary_last_run_seconds",
          "When the enforcement canary last ran (Unix time; 0: never)",
          canary_ran ? n(last_canary_.value("time_ms", uint64_t{0})) / 1e3 : 0);
}

}  // namespace palisade::agent

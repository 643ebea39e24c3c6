// The hypervisor monitor's state and steps, shared by the files that implement it: monitor.cpp
// (the loop, notices, policies, status), monitor_inventory.cpp (hosts, VM inventory and
// lifecycle), monitor_stats.cpp (bulk stats and behaviour judgements) and monitor_responses.cpp
// (VM responses and their audit records). Not a public header: palisade/hypervisor/monitor.h is.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "host_session.h"
#include "inbox.h"
#include "inspection_runner.h"
#include "palisade/base/bounded_queue.h"
#include "palisade/base/clock.h"
#include "palisade/hypervisor/behaviour.h"
#include "palisade/hypervisor/lifecycle.h"
#include "palisade/hypervisor/monitor.h"
#include "palisade/hypervisor/vm_inspector.h"
#include "palisade/ocsf/remediation.h"
#include "palisade/runtime/detector.h"
#include "palisade/runtime/responder.h"
#include "palisade/runtime/status_file.h"
#include "stats_collector.h"

namespace palisade::hypervisor {

using Clock = std::chrono::steady_clock;

struct HostState {
  std::string uri;
  std::string hypervisor;
  bool connected = false;
  bool ever_connected = false;
  bool unreachable_reported = false;
  bool needs_sync = false;                         // a listing failed: retried each round
  std::unordered_map<std::string, VmRef> domains;  // by UUID
  uint64_t uncached = 0;                           // VMs beyond max_domains
};

struct Monitor::Impl {
  MonitorOptions options;
  std::shared_ptr<ocsf::Formatter> formatter;
  MonitorOutputs outputs;
  std::unique_ptr<runtime::Detector> detector;
  std::shared_ptr<policies::PolicySet> policy;
  Inbox inbox;
  std::vector<HostState> hosts;
  std::vector<std::unique_ptr<HostSession>> sessions;
  RateTracker rates;
  BehaviourDetector behaviour;
  std::unique_ptr<InspectionRunner> inspections;
  std::unique_ptr<VmEventEmitter> emitter;

  struct Counters {
    uint64_t stats_samples = 0;
    uint64_t stats_errors = 0;
    uint64_t lookups_failed = 0;
    uint64_t stats_uncached = 0;
  } counters;
  runtime::Responder responder;

  Impl(MonitorOptions o, std::shared_ptr<ocsf::Formatter> f, MonitorOutputs out)
      : options(std::move(o)),
        formatter(std::move(f)),
        outputs(std::move(out)),
        inbox(options.inbox_capacity),
        rates(options.max_domains * std::max<size_t>(options.uris.size(), 1)),
        responder("palisade hv", options.max_responses_per_minute) {
    detector = std::make_unique<runtime::Detector>(formatter, outputs.sinks);
    detector->set_responder(
        [this](const policies::Finding& finding, const Event& event) { respond(finding, event); });
    emitter = std::make_unique<VmEventEmitter>(formatter, outputs.sinks, detector.get());
    for (const auto& uri : options.uris) {
      HostState host;
      host.uri = uri;
      hosts.push_back(std::move(host));
    }
  }

  // ---- metrics (docs/metrics.md)
  void publish_metrics();
  Clock::time_point next_metrics{};
  uint64_t started_wall_ns = base::wall_now_ns();

  // ---- events
  void emit(Event& e, bool to_outputs = true) { emitter->emit(e, to_outputs); }

  Event vm_event(EventKind kind, VmRef vm, std::string action, std::string detail = {},
                 std::string message = {});
  VmRef host_view(const HostState& host) const;
  void remember(HostState& host, const VmRef& vm);
  VmRef describe(size_t index, const std::string& uuid);

  // ---- hosts

  bool list_inventory(size_t index, std::unordered_map<std::string, VmRef>& now,
                      std::string& error);
  void host_up(size_t index);
  void replace_inventory(HostState& host, const std::unordered_map<std::string, VmRef>& now);
  void sync_inventory(size_t index, const std::string& why);
  void recover_leftover_overlays(size_t index);
  static std::string action_for_state(const std::string& state);

  void resync(const HostState& host, const std::unordered_map<std::string, VmRef>& now,
              const std::string& why);
  void forget_vm(const std::string& uuid);
  void host_down(size_t index, const std::string& message);
  void host_unreachable(size_t index, const std::string& message);

  // ---- domains

  static std::string state_after(std::string_view action, std::string_view detail,
                                 const std::string& queried);
  void lifecycle(const Notice& n);
  void reconfigured(const Notice& n);

  // ---- stats
  void collect_stats();
  void judge(const Event& sample, uint64_t now_ns);

  // ---- responses
  void respond(const policies::Finding& finding, const Event& event);

  struct ResponseJob {
    VmView vm;
    VmAction action;
    std::string rule;
    std::string reason;
  };
  struct ResponseDone {
    ResponseJob job;
    ActionOutcome outcome;
  };
  static constexpr std::chrono::minutes kSnapshotCooldown{10};
  static constexpr size_t kMaxQueuedResponses = 64;
  std::unordered_map<std::string, Clock::time_point> last_snapshot;
  base::BoundedQueue<ResponseJob> response_queue{kMaxQueuedResponses, base::OnFull::kReject};
  std::thread response_thread;
  bool enqueue_response(ResponseJob job);
  void response_worker();
  void audit_response(const ResponseJob& job, const ActionOutcome& outcome, bool refused = false);
  ActionOutcome act(const VmView& vm, VmAction action);

  // ---- inspections
  void schedule_inspections();
  void inspection_done(const Notice& n);
  void apply_policy(std::shared_ptr<policies::PolicySet> next);

  // ---- status
  nlohmann::json status() const;

  // What Monitor::status() hands other threads: a copy made on the monitor's thread.
  mutable std::mutex published_mutex;
  nlohmann::json published;
  Clock::time_point published_at;
  void publish_status();
  void write_status();
  void handle(const Notice& n);
  void dispatch(const Notice& n);
  void flush();
  std::atomic<bool> running{false};
  void run(const std::atomic<bool>& stop);
};

}  // namespace palisade::hypervisor

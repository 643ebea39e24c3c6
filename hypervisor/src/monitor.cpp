#include "palisade/hypervisor/monitor.h"

#include <spdlog/spdlog.h>
#include <time.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unordered_map>

#include "host_session.h"
#include "inbox.h"
#include "inspection_runner.h"
#include "palisade/agent/detector.h"
#include "palisade/agent/respond.h"
#include "palisade/hypervisor/behaviour.h"
#include "palisade/hypervisor/lifecycle.h"
#include "stats_collector.h"

namespace palisade::hypervisor {
namespace {

using agent::Event;
using agent::EventKind;
using agent::VmRef;
using agent::VmView;
using Clock = std::chrono::steady_clock;

uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

struct HostState {
  std::string uri;
  std::string hypervisor;
  bool connected = false;
  bool ever_connected = false;
  bool unreachable_reported = false;
  std::unordered_map<std::string, VmRef> domains;  // by UUID
  uint64_t uncached = 0;                           // VMs beyond max_domains
};

std::optional<VmAction> action_for(policies::Response response) {
  switch (response) {
    case policies::Response::kSuspend:
      return VmAction::kSuspend;
    case policies::Response::kSnapshot:
      return VmAction::kSnapshot;
    case policies::Response::kShutdown:
      return VmAction::kShutdown;
    case policies::Response::kIsolate:
      return VmAction::kIsolate;
    default:
      return std::nullopt;
  }
}

}  // namespace

struct Monitor::Impl {
  MonitorOptions options;
  std::shared_ptr<agent::OcsfFormatter> formatter;
  MonitorOutputs outputs;
  std::unique_ptr<agent::Detector> detector;
  std::shared_ptr<policies::PolicySet> policy;
  Inbox inbox;
  std::vector<HostState> hosts;
  std::vector<std::unique_ptr<HostSession>> sessions;
  RateTracker rates;
  BehaviourDetector behaviour;
  std::unique_ptr<InspectionRunner> inspections;
  std::string json;
  uint64_t seq = 0;
  int64_t wall_offset_ns = 0;

  struct Counters {
    uint64_t events = 0;
    uint64_t stats_samples = 0;
    uint64_t stats_errors = 0;
    uint64_t responses_ok = 0;
    uint64_t responses_failed = 0;
    uint64_t responses_refused = 0;
    uint64_t lookups_failed = 0;
  } counters;
  Clock::time_point response_window = Clock::now();
  uint32_t responses_in_window = 0;

  Impl(MonitorOptions o, std::shared_ptr<agent::OcsfFormatter> f, MonitorOutputs out)
      : options(std::move(o)),
        formatter(std::move(f)),
        outputs(std::move(out)),
        inbox(options.inbox_capacity),
        rates(options.max_domains * std::max<size_t>(options.uris.size(), 1)) {
    detector = std::make_unique<agent::Detector>(formatter, outputs.sinks);
    detector->set_responder(
        [this](const policies::Finding& finding, const Event& event) { respond(finding, event); });
    wall_offset_ns = static_cast<int64_t>(clock_ns(CLOCK_REALTIME)) -
                     static_cast<int64_t>(clock_ns(CLOCK_MONOTONIC));
    for (const auto& uri : options.uris)
      hosts.push_back(HostState{uri, {}, false, false, false, {}, 0});
  }

  // ---- events

  void emit(Event& e, bool to_outputs = true) {
    e.seq = ++seq;
    e.cpu = 0;
    e.mono_ns = clock_ns(CLOCK_MONOTONIC);
    e.wall_ns = static_cast<uint64_t>(static_cast<int64_t>(e.mono_ns) + wall_offset_ns);
    json.clear();
    formatter->format(e, json);
    if (to_outputs) {
      for (agent::EventSink* sink : outputs.sinks) sink->consume(e, json);
    }
    detector->consume(e, json);
    counters.events++;
  }

  Event vm_event(EventKind kind, VmRef vm, std::string action, std::string detail = {},
                 std::string message = {}) {
    Event e;
    e.kind = kind;
    e.vm = std::move(vm);
    e.vm_activity.action = std::move(action);
    e.vm_activity.detail = std::move(detail);
    e.vm_activity.message = std::move(message);
    return e;
  }

  VmRef host_view(const HostState& host) const {
    auto v = std::make_shared<VmView>();
    v->host = host.uri;
    v->hypervisor = host.hypervisor;
    return v;
  }

  void remember(HostState& host, const VmRef& vm) {
    if (host.domains.size() >= options.max_domains && !host.domains.contains(vm->uuid)) {
      host.uncached++;
      return;
    }
    host.domains[vm->uuid] = vm;
  }

  VmRef describe(size_t index, const std::string& uuid) {
    HostState& host = hosts[index];
    auto conn = sessions[index]->connection();
    if (conn) {
      try {
        DomainHandle d = conn->find_domain(uuid);
        return std::make_shared<VmView>(describe_domain(d.get(), host.uri, host.hypervisor));
      } catch (const std::exception& e) {
        counters.lookups_failed++;
        spdlog::debug("hv: {}: {}", host.uri, e.what());
      }
    }
    auto it = host.domains.find(uuid);
    return it != host.domains.end() ? it->second : nullptr;
  }

  // ---- hosts

  void host_up(size_t index) {
    HostState& host = hosts[index];
    auto conn = sessions[index]->connection();
    if (!conn) return;
    host.hypervisor = conn->hypervisor_type();
    const bool restored = host.ever_connected;
    host.connected = host.ever_connected = true;
    host.unreachable_reported = false;
    std::unordered_map<std::string, VmRef> now;
    try {
      for (const auto& d : conn->list_domains()) {
        try {
          auto vm = std::make_shared<VmView>(describe_domain(d.get(), host.uri, host.hypervisor));
          now.emplace(vm->uuid, std::move(vm));
        } catch (const std::exception& e) {
          counters.lookups_failed++;  // a transient domain that went away while listed
        }
      }
    } catch (const std::exception& e) {
      spdlog::warn("hv: {}: {}", host.uri, e.what());
    }
    Event e = vm_event(EventKind::kVmHost, host_view(host), restored ? "restored" : "connected", {},
                       host.uri + (restored ? ": connection restored, " : ": connected, ") +
                           std::to_string(now.size()) + " domain(s)");
    emit(e);
    if (restored) resync(host, now);
    for (const auto& [uuid, vm] : now) {
      Event inv = vm_event(EventKind::kVmInventory, vm, "present");
      emit(inv);
    }
    host.domains.clear();
    host.uncached = 0;
    for (const auto& [uuid, vm] : now) remember(host, vm);
    spdlog::info("hv: {}: {} ({} domains)", host.uri, restored ? "re-synced" : "connected",
                 now.size());
  }

  // What changed while the host was away, as lifecycle events marked "while-disconnected".
  void resync(const HostState& host, const std::unordered_map<std::string, VmRef>& now) {
    for (const auto& [uuid, before] : host.domains) {
      if (!now.contains(uuid)) {
        Event e = vm_event(EventKind::kVmLifecycle, before, "undefined", "while-disconnected");
        emit(e);
      }
    }
    for (const auto& [uuid, vm] : now) {
      auto it = host.domains.find(uuid);
      if (it == host.domains.end()) {
        Event e = vm_event(EventKind::kVmLifecycle, vm, "defined", "while-disconnected");
        emit(e);
      } else if (it->second->state != vm->state) {
        const std::string action = vm->state == "running"   ? "started"
                                   : vm->state == "paused"  ? "suspended"
                                   : vm->state == "crashed" ? "crashed"
                                                            : "stopped";
        Event e = vm_event(EventKind::kVmLifecycle, vm, action, "while-disconnected");
        emit(e);
      }
    }
  }

  void host_down(size_t index, const std::string& message) {
    HostState& host = hosts[index];
    host.connected = false;
    Event e = vm_event(EventKind::kVmHost, host_view(host), "lost", {}, host.uri + ": " + message);
    emit(e);
    spdlog::warn("hv: {}: {}", host.uri, message);
  }

  void host_unreachable(size_t index, const std::string& message) {
    HostState& host = hosts[index];
    if (host.unreachable_reported) return;
    host.unreachable_reported = true;
    Event e = vm_event(EventKind::kVmHost, host_view(host), "unreachable", {}, message);
    emit(e);
    spdlog::warn("hv: {}", message);
  }

  // ---- domains

  // The state a lifecycle event leaves the VM in. Events are handled after the fact: by then the
  // VM may have moved on (or be gone), so the event says what it implies, not what a query says.
  static std::string state_after(std::string_view action, std::string_view detail,
                                 const std::string& queried) {
    if (action == "started" || action == "resumed") return "running";
    if (action == "suspended") return "paused";
    if (action == "stopped" || action == "shutdown") return detail == "guest" ? queried : "shutoff";
    if (action == "crashed" || action == "pmsuspended" || action == "undefined") {
      return std::string(action);
    }
    if (action == "migrated") return detail == "left" ? "shutoff" : "running";
    return queried.empty() ? "shutoff" : queried;
  }

  void lifecycle(const Notice& n) {
    HostState& host = hosts[n.host];
    const LifecycleName name = lifecycle_name(n.event, n.detail);
    VmRef vm = name.action == "undefined" ? nullptr : describe(n.host, n.uuid);
    if (!vm) {
      auto it = host.domains.find(n.uuid);
      if (it != host.domains.end()) vm = it->second;
    }
    auto view = vm ? std::make_shared<VmView>(*vm) : std::make_shared<VmView>();
    if (!vm) {
      view->host = host.uri;
      view->hypervisor = host.hypervisor;
      view->uuid = n.uuid;
      view->name = n.name;
    }
    view->state = state_after(name.action, name.detail, view->state);
    vm = view;
    const bool gone = name.action == "undefined" ||
                      (view->state == "shutoff" && !view->persistent);  // a transient VM ended
    if (gone) {
      host.domains.erase(n.uuid);
      behaviour.forget(n.uuid);
    } else {
      remember(host, vm);
    }
    if (view->state != "running") rates.forget(n.uuid);
    Event e =
        vm_event(EventKind::kVmLifecycle, vm, std::string(name.action), std::string(name.detail));
    emit(e);
  }

  void reconfigured(const Notice& n) {
    VmRef vm = describe(n.host, n.uuid);
    if (!vm) return;
    remember(hosts[n.host], vm);
    Event e = vm_event(EventKind::kVmInventory, vm, "configured",
                       n.type == Notice::Type::kMetadata ? "metadata" : "devices");
    emit(e);
  }

  // ---- stats

  void collect_stats() {
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
      for (const auto& s : samples) {
        counters.stats_samples++;
        auto activity = rates.update(s, max_gap);
        if (!activity) continue;
        auto it = host.domains.find(s.uuid);
        VmRef vm = it != host.domains.end() ? it->second : describe(i, s.uuid);
        if (!vm) continue;
        Event e;
        e.kind = EventKind::kVmStats;
        e.vm = vm;
        e.vm_activity = std::move(*activity);
        emit(e, options.emit_stats);
        if (have_vm_policies) judge(e, s.time_ns);
      }
    }
  }

  void judge(const Event& sample, uint64_t now_ns) {
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

  // ---- responses

  void respond(const policies::Finding& finding, const Event& event) {
    if (!event.vm || !options.responses) return;
    const auto action = action_for(finding.rule->response);
    if (!action) {
      spdlog::warn("hv: rule {} asks for {}, which does not apply to a VM", finding.rule->name,
                   policies::response_name(finding.rule->response));
      return;
    }
    const auto now = Clock::now();
    if (now - response_window > std::chrono::minutes(1)) {
      response_window = now;
      responses_in_window = 0;
    }
    ActionOutcome outcome;
    if (++responses_in_window > options.max_responses_per_minute) {
      counters.responses_refused++;
      outcome.detail = "refused: more than " + std::to_string(options.max_responses_per_minute) +
                       " responses in a minute";
    } else {
      outcome = act(*event.vm, *action);
    }
    (outcome.ok ? counters.responses_ok : counters.responses_failed)++;
    nlohmann::json record = vm_remediation_record(
        *action, *event.vm, outcome,
        agent::requester("palisade hv: rule " + finding.rule->name, finding.message));
    record["unmapped"]["palisade"]["rule"] = finding.rule->name;
    spdlog::info("hv: response {} on {} for rule {}: {}", action_name(*action), event.vm->name,
                 finding.rule->name, outcome.detail);
    if (outputs.audit) outputs.audit(record);
  }

  ActionOutcome act(const VmView& vm, VmAction action) {
    for (size_t i = 0; i < hosts.size(); ++i) {
      if (hosts[i].uri != vm.host) continue;
      auto conn = sessions[i]->connection();
      if (!conn) return ActionOutcome{false, "not connected to " + vm.host, {}};
      try {
        DomainHandle d = conn->find_domain(vm.uuid);
        return carry_out(*conn, d.get(), action, options.response);
      } catch (const std::exception& e) {
        return ActionOutcome{false, e.what(), {}};
      }
    }
    return ActionOutcome{false, "unknown host " + vm.host, {}};
  }

  // ---- inspections

  void schedule_inspections() {
    if (!inspections || !policy) return;
    for (size_t i = 0; i < hosts.size(); ++i) {
      if (!hosts[i].connected) continue;
      for (const auto& [uuid, vm] : hosts[i].domains) {
        for (const auto& p : policy->vm_policies()) {
          if (!p->inspection.enabled || !p->selector.matches(*vm)) continue;
          inspections->schedule_if_due(i, sessions[i]->connection(), vm, p->name, p->inspection);
          break;  // the first policy that inspects a VM decides how
        }
      }
    }
  }

  void inspection_done(const Notice& n) {
    auto result = std::static_pointer_cast<InspectionOutcome>(n.payload);
    for (Event& e : result->events) emit(e);
  }

  void apply_policy(std::shared_ptr<policies::PolicySet> next) {
    policy = next;
    detector->set_policy(std::move(next));
    behaviour.clear();
  }

  // ---- status

  nlohmann::json status() const {
    nlohmann::json hosts_json = nlohmann::json::array();
    for (size_t i = 0; i < hosts.size(); ++i) {
      const SessionCounters c = sessions.size() > i ? sessions[i]->counters() : SessionCounters{};
      hosts_json.push_back({{"uri", hosts[i].uri},
                            {"connected", hosts[i].connected},
                            {"hypervisor", hosts[i].hypervisor},
                            {"domains", hosts[i].domains.size()},
                            {"uncached_domains", hosts[i].uncached},
                            {"connects", c.connects},
                            {"losses", c.losses},
                            {"failed_attempts", c.failed_attempts}});
    }
    nlohmann::json s = {{"hosts", hosts_json},
                        {"events", counters.events},
                        {"findings", detector->findings()},
                        {"stats_samples", counters.stats_samples},
                        {"stats_errors", counters.stats_errors},
                        {"notices_dropped", inbox.dropped()},
                        {"responses",
                         {{"carried_out", counters.responses_ok},
                          {"failed", counters.responses_failed},
                          {"refused_rate", counters.responses_refused}}},
                        {"policy_digest", policy ? policy->digest() : ""}};
    if (inspections) s["inspections"] = inspections->status();
    return s;
  }

  void write_status() const {
    if (options.status_file.empty()) return;
    const std::string tmp = options.status_file + ".tmp";
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(options.status_file).parent_path(),
                                        ec);
    {
      std::ofstream out(tmp);
      out << status().dump(2) << "\n";
      if (!out) return;
    }
    std::filesystem::rename(tmp, options.status_file, ec);
  }

  void handle(const Notice& n) {
    switch (n.type) {
      case Notice::Type::kHostUp:
        host_up(n.host);
        break;
      case Notice::Type::kHostDown:
        host_down(n.host, n.message);
        break;
      case Notice::Type::kHostUnreachable:
        host_unreachable(n.host, n.message);
        break;
      case Notice::Type::kLifecycle:
        lifecycle(n);
        break;
      case Notice::Type::kMetadata:
      case Notice::Type::kDevice:
        reconfigured(n);
        break;
      case Notice::Type::kWork:
        inspection_done(n);
        break;
      case Notice::Type::kPolicy:
        apply_policy(std::static_pointer_cast<policies::PolicySet>(n.payload));
        break;
    }
  }

  void flush() {
    for (agent::EventSink* sink : outputs.sinks) sink->flush();
  }

  std::atomic<bool> running{false};

  void run(const std::atomic<bool>& stop) {
    running = true;
    SessionOptions session;
    session.read_only = options.read_only;
    session.backoff_min_ms = options.backoff_min_ms;
    session.backoff_max_ms = options.backoff_max_ms;
    for (size_t i = 0; i < hosts.size(); ++i) {
      sessions.push_back(std::make_unique<HostSession>(i, hosts[i].uri, session, inbox));
    }
    inspections = std::make_unique<InspectionRunner>(options.inspection, inbox, formatter);
    for (auto& s : sessions) s->start();
    const auto stats_every =
        std::chrono::milliseconds(std::max<uint32_t>(options.stats_interval_ms, 100));
    const auto status_every =
        std::chrono::milliseconds(std::max<uint32_t>(options.status_interval_ms, 1000));
    auto next_stats = Clock::now() + stats_every;
    auto next_status = Clock::now();
    auto next_schedule = Clock::now() + std::chrono::seconds(1);
    while (!stop.load()) {
      const auto deadline = std::min(
          {next_stats, next_status, next_schedule, Clock::now() + std::chrono::milliseconds(200)});
      if (auto n = inbox.pop_until(deadline)) {
        handle(*n);
        // Drain what else is waiting before flushing: one write for a burst.
        while (auto more = inbox.pop_until(Clock::now())) handle(*more);
        flush();
      }
      const auto now = Clock::now();
      if (now >= next_stats) {
        collect_stats();
        flush();
        next_stats = now + stats_every;
      }
      if (now >= next_schedule) {
        schedule_inspections();
        next_schedule = now + std::chrono::seconds(5);
      }
      if (now >= next_status) {
        write_status();
        next_status = now + status_every;
      }
    }
    inspections.reset();  // waits for running inspections (bounded by their time limits)
    while (auto n = inbox.pop_until(Clock::now())) {
      if (n->type == Notice::Type::kWork || n->type == Notice::Type::kLifecycle) handle(*n);
    }
    flush();
    write_status();
    sessions.clear();
  }
};

Monitor::Monitor(MonitorOptions options, std::shared_ptr<agent::OcsfFormatter> formatter,
                 MonitorOutputs outputs)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(formatter), std::move(outputs))) {}

Monitor::~Monitor() = default;

void Monitor::set_policy(std::shared_ptr<policies::PolicySet> policy) {
  if (!impl_->running) {
    impl_->apply_policy(std::move(policy));
    return;
  }
  // Applied by the monitor's own thread, between two events (never dropped for a full inbox:
  // a reload is retried until it gets in).
  Notice n;
  n.type = Notice::Type::kPolicy;
  n.payload = std::move(policy);
  while (!impl_->inbox.push(n)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void Monitor::run(const std::atomic<bool>& stop) {
  impl_->run(stop);
}

nlohmann::json Monitor::status() const {
  return impl_->status();
}

}  // namespace palisade::hypervisor

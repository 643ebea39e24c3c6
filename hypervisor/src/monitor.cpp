#include "palisade/hypervisor/monitor.h"

#include <spdlog/spdlog.h>

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
#include "palisade/hypervisor/vm_inspector.h"
#include "palisade/ocsf/remediation.h"
#include "palisade/runtime/detector.h"
#include "palisade/runtime/responder.h"
#include "palisade/runtime/status_file.h"
#include "stats_collector.h"

namespace palisade::hypervisor {
namespace {

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

VmEventEmitter::VmEventEmitter(std::shared_ptr<ocsf::Formatter> formatter,
                               std::vector<runtime::EventSink*> sinks, runtime::EventSink* detector)
    : formatter_(std::move(formatter)),
      sinks_(std::move(sinks)),
      detector_(detector),
      wall_offset_ns_(base::current_wall_offset_ns()) {}

void VmEventEmitter::emit(Event& e, bool to_outputs) {
  e.seq = ++seq_;
  e.cpu = 0;
  e.mono_ns = monotonic_ns();
  e.wall_ns = static_cast<uint64_t>(static_cast<int64_t>(e.mono_ns) + wall_offset_ns_);
  json_.clear();
  formatter_->format(e, json_);
  if (to_outputs) {
    for (runtime::EventSink* sink : sinks_) sink->consume(e, json_);
  }
  if (detector_ != nullptr) detector_->consume(e, json_);
}

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

  // ---- events

  void emit(Event& e, bool to_outputs = true) { emitter->emit(e, to_outputs); }

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

  // Every domain of the host, described. False when the host could not list them; a domain that
  // could not be described keeps its cached view (it is not gone for that).
  bool list_inventory(size_t index, std::unordered_map<std::string, VmRef>& now,
                      std::string& error) {
    HostState& host = hosts[index];
    auto conn = sessions[index]->connection();
    if (!conn) {
      error = "not connected";
      return false;
    }
    try {
      for (const auto& d : conn->list_domains()) {
        const std::string uuid = domain_uuid(d.get());
        try {
          now[uuid] = std::make_shared<VmView>(describe_domain(d.get(), host.uri, host.hypervisor));
        } catch (const std::exception&) {
          counters.lookups_failed++;  // a transient domain that went away while listed, ...
          auto it = host.domains.find(uuid);
          if (it != host.domains.end()) now[uuid] = it->second;
        }
      }
    } catch (const std::exception& e) {
      error = e.what();
      return false;
    }
    return true;
  }

  void host_up(size_t index) {
    HostState& host = hosts[index];
    auto conn = sessions[index]->connection();
    if (!conn) return;
    host.hypervisor = conn->hypervisor_type();
    const bool restored = host.ever_connected;
    host.connected = host.ever_connected = true;
    host.unreachable_reported = false;
    std::unordered_map<std::string, VmRef> now;
    std::string error;
    const bool listed = list_inventory(index, now, error);
    Event e = vm_event(EventKind::kVmHost, host_view(host), restored ? "restored" : "connected", {},
                       host.uri + (restored ? ": connection restored, " : ": connected, ") +
                           (listed ? std::to_string(now.size()) + " domain(s)"
                                   : "the domains could not be listed: " + error));
    emit(e);
    if (!listed) {
      // The previous inventory stays; the listing is retried until it works.
      host.needs_sync = true;
      spdlog::warn("hv: {}: cannot list domains: {}", host.uri, error);
      return;
    }
    host.needs_sync = false;
    if (restored) resync(host, now, "while-disconnected");
    for (const auto& [uuid, vm] : now) {
      Event inv = vm_event(EventKind::kVmInventory, vm, "present");
      emit(inv);
    }
    replace_inventory(host, now);
    recover_leftover_overlays(index);
    spdlog::info("hv: {}: {} ({} domains)", host.uri, restored ? "re-synced" : "connected",
                 now.size());
    write_status();  // a host's connection is what an operator checks first
  }

  void replace_inventory(HostState& host, const std::unordered_map<std::string, VmRef>& now) {
    for (const auto& [uuid, vm] : host.domains) {
      if (!now.contains(uuid)) forget_vm(uuid);
    }
    host.domains.clear();
    host.uncached = 0;
    for (const auto& [uuid, vm] : now) remember(host, vm);
  }

  // Lists the host again and reports the differences with the cache as lifecycle events: after
  // dropped notices, or when a listing failed before.
  void sync_inventory(size_t index, const std::string& why) {
    HostState& host = hosts[index];
    std::unordered_map<std::string, VmRef> now;
    std::string error;
    if (!list_inventory(index, now, error)) {
      host.needs_sync = true;
      return;
    }
    host.needs_sync = false;
    resync(host, now, why);
    replace_inventory(host, now);
  }

  // Running VMs left on an inspection overlay (the process died mid-inspection, a merge failed).
  void recover_leftover_overlays(size_t index) {
    auto conn = sessions[index]->connection();
    if (!conn || options.read_only) return;
    for (const auto& [uuid, vm] : hosts[index].domains) {
      if (inspections && inspections->busy(uuid)) continue;
      bool on_overlay = false;
      for (const auto& d : vm->disks) {
        on_overlay =
            on_overlay || d.source.rfind(options.inspection.overlay_directory + "/", 0) == 0;
      }
      if (!on_overlay) continue;
      try {
        DomainHandle d = conn->find_domain(uuid);
        for (const auto& line : recover_overlays(d.get(), options.inspection.overlay_directory)) {
          spdlog::warn("hv: {}", line);
          Event e = vm_event(EventKind::kVmInspection, vm, "recovered", {}, line);
          emit(e);
        }
      } catch (const std::exception& e) {
        spdlog::warn("hv: {}: {}", vm->name, e.what());
      }
    }
  }

  // The lifecycle action that leads to a state, for differences found by a re-sync.
  static std::string action_for_state(const std::string& state) {
    if (state == "running" || state == "blocked") return "started";
    if (state == "paused") return "suspended";
    if (state == "crashed" || state == "pmsuspended" || state == "shutdown") return state;
    return "stopped";
  }

  // What changed while the monitor was not told, as lifecycle events with `why` as detail.
  void resync(const HostState& host, const std::unordered_map<std::string, VmRef>& now,
              const std::string& why) {
    for (const auto& [uuid, before] : host.domains) {
      if (!now.contains(uuid)) {
        auto gone = std::make_shared<VmView>(*before);
        gone->state = "undefined";
        Event e = vm_event(EventKind::kVmLifecycle, gone, "undefined", why);
        emit(e);
      }
    }
    for (const auto& [uuid, vm] : now) {
      auto it = host.domains.find(uuid);
      if (it == host.domains.end()) {
        Event e = vm_event(EventKind::kVmLifecycle, vm, "defined", why);
        emit(e);
      } else if (action_for_state(it->second->state) != action_for_state(vm->state)) {
        Event e = vm_event(EventKind::kVmLifecycle, vm, action_for_state(vm->state), why);
        emit(e);
      }
    }
  }

  void forget_vm(const std::string& uuid) {
    rates.forget(uuid);
    behaviour.forget(uuid);
    if (inspections) inspections->forget(uuid);
  }

  void host_down(size_t index, const std::string& message) {
    HostState& host = hosts[index];
    host.connected = false;
    Event e = vm_event(EventKind::kVmHost, host_view(host), "lost", {}, host.uri + ": " + message);
    emit(e);
    write_status();
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
    // A shutdown event says the guest is shutting down, not that it is off (a fake reboot or
    // on_poweroff=preserve keep it): what libvirt says now is the better answer.
    if (action == "shutdown") return queried.empty() ? "shutdown" : queried;
    if (action == "stopped" || (action == "crashed" && detail == "stopped")) return "shutoff";
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
    view->state = state_after(name.action, name.detail, vm ? vm->state : std::string());
    vm = view;
    const bool gone = name.action == "undefined" ||
                      (view->state == "shutoff" && !view->persistent);  // a transient VM ended
    if (gone) {
      host.domains.erase(n.uuid);
      forget_vm(n.uuid);
    } else {
      remember(host, vm);
      // Rates and sustained windows do not carry over a stop: the next run starts afresh.
      if (view->state != "running" && view->state != "paused") {
        rates.forget(n.uuid);
        behaviour.forget(n.uuid);
      }
    }
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

  // Decides on the monitor's thread (rate limit, cooldown) and hands the action to the response
  // worker: a memory dump or a snapshot takes seconds and must not stop event handling.
  void respond(const policies::Finding& finding, const Event& event) {
    if (!event.vm || !options.responses) return;
    const auto action = action_for(finding.rule->response);
    if (!action) {
      spdlog::warn("hv: rule {} asks for {}, which does not apply to a VM", finding.rule->name,
                   policies::response_name(finding.rule->response));
      return;
    }
    ResponseJob job{*event.vm, *action, finding.rule->name, finding.message};
    const auto now = Clock::now();
    std::string refused;
    if (std::optional<runtime::ResponseOutcome> over = responder.admit(now)) {
      refused = over->detail;
    } else if (*action == VmAction::kSnapshot) {
      // One forensic snapshot per VM per cooldown: each adds a layer to its disk chain and a
      // memory dump the size of its RAM.
      auto& last = last_snapshot[event.vm->uuid];
      if (last != Clock::time_point{} && now - last < kSnapshotCooldown) {
        refused = "refused: a forensic snapshot of this VM was taken less than " +
                  std::to_string(kSnapshotCooldown.count()) + " minutes ago";
      } else {
        last = now;
      }
      if (last_snapshot.size() > options.max_domains) last_snapshot.clear();
    }
    if (refused.empty() && !enqueue_response(job)) refused = "refused: the response queue is full";
    if (!refused.empty()) audit_response(job, ActionOutcome{false, refused, {}}, true);
  }

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

  bool enqueue_response(ResponseJob job) {
    return response_queue.push(std::move(job)) == base::PushResult::kQueued;
  }

  // The response worker: carries out queued responses (all of them, also when stopping: they
  // were decided) and hands the audit records back to the monitor's thread.
  void response_worker() {
    while (std::optional<ResponseJob> job = response_queue.pop()) {
      auto done = std::make_shared<ResponseDone>();
      done->outcome = act(job->vm, job->action);
      done->job = std::move(*job);
      Notice n;
      n.type = Notice::Type::kResponseDone;
      n.payload = std::move(done);
      inbox.push(std::move(n));
    }
  }

  void audit_response(const ResponseJob& job, const ActionOutcome& outcome, bool refused = false) {
    nlohmann::json record = vm_remediation_record(job.action, job.vm, outcome,
                                                  responder.requester(job.rule, job.reason));
    record = responder.audit(std::move(record),
                             runtime::ResponseOutcome{outcome.ok, outcome.detail, refused},
                             job.rule, action_name(job.action));
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
    // Windows and learned baselines of policies that are still there survive a reload.
    std::vector<std::string> names;
    if (next) {
      for (const auto& p : next->vm_policies()) names.push_back(p->name);
    }
    behaviour.keep_only(names);
    policy = next;
    detector->set_policy(std::move(next));
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
                        {"events", emitter->count()},
                        {"findings", detector->findings()},
                        {"stats_samples", counters.stats_samples},
                        {"stats_errors", counters.stats_errors},
                        {"stats_skipped_uncached", counters.stats_uncached},
                        {"rate_evictions", rates.evictions()},
                        {"behaviour_evictions", behaviour.evictions()},
                        {"notices_dropped", inbox.dropped()},
                        {"responses", responder.status()},
                        {"policy_digest", policy ? policy->digest() : ""}};
    if (inspections) s["inspections"] = inspections->status();
    return s;
  }

  // What Monitor::status() hands other threads: a copy made on the monitor's thread.
  mutable std::mutex published_mutex;
  nlohmann::json published;
  Clock::time_point published_at;

  void publish_status() {
    const auto now = Clock::now();
    if (now - published_at < std::chrono::milliseconds(100)) return;
    published_at = now;
    nlohmann::json s = status();
    std::lock_guard lock(published_mutex);
    published = std::move(s);
  }

  void write_status() {
    published_at = {};
    publish_status();
    runtime::write_status_file(options.status_file, status());
  }

  // A notice that fails (a libvirt error nobody caught on the way) is logged, not the end of the
  // monitor: the other hosts and VMs are still watched.
  void handle(const Notice& n) {
    try {
      dispatch(n);
    } catch (const std::exception& e) {
      spdlog::error("hv: handling a notice about {}: {}",
                    n.name.empty() ? hosts[n.host].uri : n.name, e.what());
    }
  }

  void dispatch(const Notice& n) {
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
      case Notice::Type::kResponseDone: {
        auto done = std::static_pointer_cast<ResponseDone>(n.payload);
        audit_response(done->job, done->outcome);
        break;
      }
      case Notice::Type::kPolicy:
        apply_policy(std::static_pointer_cast<policies::PolicySet>(n.payload));
        break;
    }
  }

  void flush() {
    for (runtime::EventSink* sink : outputs.sinks) sink->flush();
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
    inspections = std::make_unique<InspectionRunner>(options.inspection, inbox);
    response_thread = std::thread([this] { response_worker(); });
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
        publish_status();
      }
      const auto now = Clock::now();
      if (inbox.take_drops()) {
        for (size_t i = 0; i < hosts.size(); ++i) {
          if (hosts[i].connected) sync_inventory(i, "events-dropped");
        }
      }
      if (now >= next_stats) {
        for (size_t i = 0; i < hosts.size(); ++i) {
          if (hosts[i].connected && hosts[i].needs_sync) sync_inventory(i, "listing-retried");
        }
        collect_stats();
        flush();
        publish_status();
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
    response_queue.close();
    response_thread.join();  // the decided responses are carried out (at most 64 queued)
    for (auto& s : sessions) s->request_stop();  // all at once, then wait
    // Waits for running inspections (bounded by their time limits): stopping one between its
    // snapshot and its merge would leave the VM on an overlay.
    inspections.reset();
    while (auto n = inbox.pop_until(Clock::now())) {
      if (n->type != Notice::Type::kHostUp) handle(*n);  // findings, audits, last events
    }
    flush();
    write_status();
    sessions.clear();
    running = false;
  }
};

Monitor::Monitor(MonitorOptions options, std::shared_ptr<ocsf::Formatter> formatter,
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
  for (int attempt = 0; !impl_->inbox.push(n); ++attempt) {
    if (!impl_->running || attempt > 3000) {  // stopped, or 30 s without room: apply nothing
      spdlog::error("hv: policy set not applied: the monitor is not taking notices");
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Monitor::run(const std::atomic<bool>& stop) {
  impl_->run(stop);
}

nlohmann::json Monitor::status() const {
  if (!impl_->running) return impl_->status();
  std::lock_guard lock(impl_->published_mutex);
  return impl_->published;
}

}  // namespace palisade::hypervisor

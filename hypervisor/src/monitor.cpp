// The monitor's loop: notices from the host sessions, inspections, policies and the status.
#include <spdlog/spdlog.h>

#include "monitor_impl.h"

namespace palisade::hypervisor {

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

void Monitor::Impl::schedule_inspections() {
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

void Monitor::Impl::inspection_done(const Notice& n) {
  auto result = std::static_pointer_cast<InspectionOutcome>(n.payload);
  for (Event& e : result->events) emit(e);
}

void Monitor::Impl::apply_policy(std::shared_ptr<policies::PolicySet> next) {
  // Windows and learned baselines of policies that are still there survive a reload.
  std::vector<std::string> names;
  if (next) {
    for (const auto& p : next->vm_policies()) names.push_back(p->name);
  }
  behaviour.keep_only(names);
  policy = next;
  detector->set_policy(std::move(next));
}

nlohmann::json Monitor::Impl::status() const {
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

void Monitor::Impl::publish_status() {
  const auto now = Clock::now();
  if (now - published_at < std::chrono::milliseconds(100)) return;
  published_at = now;
  nlohmann::json s = status();
  std::lock_guard lock(published_mutex);
  published = std::move(s);
}

void Monitor::Impl::write_status() {
  published_at = {};
  publish_status();
  runtime::write_status_file(options.status_file, status());
}

// A notice that fails (a libvirt error nobody caught on the way) is logged, not the end of the
// monitor: the other hosts and VMs are still watched.
void Monitor::Impl::handle(const Notice& n) {
  try {
    dispatch(n);
  } catch (const std::exception& e) {
    spdlog::error("hv: handling a notice about {}: {}", n.name.empty() ? hosts[n.host].uri : n.name,
                  e.what());
  }
}

void Monitor::Impl::dispatch(const Notice& n) {
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

void Monitor::Impl::flush() {
  for (runtime::EventSink* sink : outputs.sinks) sink->flush();
}

void Monitor::Impl::run(const std::atomic<bool>& stop) {
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
    if (outputs.metrics != nullptr && now >= next_metrics) {
      publish_metrics();
      next_metrics = now + std::chrono::seconds(1);
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
  if (outputs.metrics != nullptr) publish_metrics();
  sessions.clear();
  running = false;
}

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

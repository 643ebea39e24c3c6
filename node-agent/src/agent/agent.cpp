#include "palisade/agent/agent.h"

#include <arpa/inet.h>
#include <linux/capability.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "agent/agent_impl.h"
#include "agent/file_integrity.h"
#include "container/containerd_watcher.h"
#include "kubernetes/kubernetes_link.h"
#include "palisade/agent/capture.h"
#include "palisade/agent/container.h"
#include "palisade/agent/enforcer.h"
#include "palisade/agent/respond.h"
#include "palisade/base/capabilities.h"
#include "palisade/base/cgroup.h"
#include "palisade/base/clock.h"
#include "palisade/base/private_files.h"
#include "palisade/base/proc.h"
#include "palisade/ocsf/remediation.h"
#include "palisade/runtime/control_signals.h"
#include "palisade/runtime/detector.h"
#include "palisade/runtime/responder.h"
#include "palisade/runtime/status_file.h"
namespace palisade::agent {
namespace {

// Hands file events to the file-integrity monitor, which confirms them against the baseline.
class FileIntegritySink : public runtime::EventSink {
 public:
  explicit FileIntegritySink(FileIntegrity& fim) : fim_(fim) {}
  void consume(const Event& event, std::string_view) override { fim_.observe(event); }

 private:
  FileIntegrity& fim_;
};

}  // namespace

void Agent::open_outputs() {
  outputs_ = std::make_unique<runtime::Outputs>(config_.outputs, formatter_);
  if (options_.replay_path.empty()) {  // a replay is offline: it exports nothing
    for (const auto& e : config_.exporters) {
      outputs_->add(e.name, exporters::open_exporter(e, formatter_));
    }
  }
  std::vector<runtime::EventSink*> sinks = outputs_->sinks();
  containers_ = std::make_shared<ContainerRegistry>(config_.containers.max_containers);
  if (options_.replay_path.empty()) {
    kubernetes_ = KubernetesLink::create(config_.kubernetes, containers_);
  }
  std::vector<runtime::EventSink*> finding_sinks = sinks;
  if (kubernetes_) finding_sinks.push_back(kubernetes_.get());  // alerts as Kubernetes Events
  detector_ = std::make_unique<runtime::Detector>(formatter_, finding_sinks);
  fim_ = std::make_unique<FileIntegrity>(FileIntegrityConfig{
      config_.fim_database, config_.fim_protect_database, config_.fim_content_directory,
      options_.replay_path.empty() ? config_.fim_rescan_interval_seconds : 0,
      config_.fim_restore_delay_ms});
  responder_ =
      std::make_unique<runtime::Responder>("palisade agent", config_.responses.max_per_minute);
  detector_->set_responder(
      [this](const policies::Finding& finding, const Event& event) { respond(finding, event); });
  if (options_.replay_path.empty()) {
    fim_sink_ = std::make_unique<FileIntegritySink>(*fim_);
    sinks.push_back(fim_sink_.get());
  }
  sinks.push_back(detector_.get());  // last: a finding follows the event it links to
  pipeline_ = std::make_unique<Pipeline>(*table_, sinks);
  pipeline_->set_formatter(formatter_);
  pipeline_->set_path_rules(config_.sensor.file_rules);
  start_containers();
}

void Agent::start_containers() {
  const ContainersConfig& c = config_.containers;
  if (kubernetes_) kubernetes_->start();
  resolver_ =
      std::make_unique<ContainerResolver>(containers_, runtime_namespaces(c.containerd_namespace));
  pipeline_->set_container_resolver(resolver_.get());
  if (!c.containerd || !options_.replay_path.empty()) return;
  ContainerdOptions options;
  options.socket = c.containerd_socket;
  options.ns = c.containerd_namespace;
  options.exited_linger = std::chrono::seconds(c.exited_linger_seconds);
  containerd_ = std::make_unique<ContainerdWatcher>(options, containers_);
  resolver_->set_fetch([watcher = containerd_.get()](const std::string& id, uint32_t pid) {
    return watcher->fetch(id, pid);
  });
  containerd_->start();
}

void Agent::start_enforcement() {
  if (!config_.enforcement.enabled) {
    enforcement_error_ = "disabled by configuration (enforcement.enabled: false)";
    return;
  }
  if (live_ == nullptr) {
    enforcement_error_ = "not used when replaying a capture";
    return;
  }
  try {
    enforcer_ = Enforcer::start(config_.enforcement.options);
    enforcer_->set_peer_resolver(
        [this](const policies::PeerSelector& selector) { return peer_addresses(selector); });
    pipeline_->set_cgroup_names(enforcer_.get());
  } catch (const std::exception& e) {
    // Detection goes on without it; the status and every rebind say that nothing is enforced.
    enforcement_error_ = e.what();
    spdlog::error("enforcement unavailable, policies are only audited: {}", e.what());
  }
}

// Binds policies to the cgroups they cover and writes the kernel maps, when that changed.
void Agent::bind_enforcement(bool force) {
  if (!enforcer_) return;
  const auto& policy = detector_->policy();
  if (!policy) return;
  bool by_cgroup = false;
  for (const auto& p : policy->workload_policies()) by_cgroup |= !p->cgroups.empty();
  const std::vector<CgroupEntry> cgroups = by_cgroup ? scan_cgroups() : std::vector<CgroupEntry>{};
  const std::vector<ContainerRef> containers = containers_->all();
  const std::vector<WorkloadBinding> bindings = bind_workloads(*policy, containers, cgroups);
  std::vector<uint64_t> identified;
  for (const auto& c : containers) {
    if (c->cgroup_id != 0) identified.push_back(c->cgroup_id);
  }
  std::string signature = policy->digest();
  for (const auto& b : bindings) {
    signature += ";" + std::to_string(b.cgroup_id) + "=" + b.policy->name;
  }
  for (uint64_t id : identified) signature += ";" + std::to_string(id);
  if (policy->uses_workload_peers() && kubernetes_) {
    signature += ";peers=" + std::to_string(kubernetes_->peers_generation());
  }
  if (!force && signature == binding_signature_) return;
  binding_signature_ = std::move(signature);
  enforcer_->apply(policy, bindings, identified);
  spdlog::info("enforcement: {} workload cgroup(s) bound to policies", bindings.size());
}

// The rule a failed canary is reported under: enforcement that silently does nothing is the worst
// failure an enforcement tool can have.
const policies::DetectionRule& canary_rule() {
  static const policies::DetectionRule rule = [] {
    policies::DetectionRule r;
    r.name = "enforcement-canary-failed";
    r.description = "Kernel enforcement is not working: a canary that must be refused was not";
    r.severity = policies::Severity::kHigh;
    r.tags = {"palisade", "enforcement"};
    r.source = "<agent>";
    return r;
  }();
  return rule;
}

void Agent::run_canary() {
  if (!enforcer_ || config_.enforcement.canary_interval_seconds == 0) return;
  const CanaryResult result = enforcer_->run_canary();
  last_canary_ = result.to_json();
  if (result.passed()) {
    spdlog::info("enforcement canary passed: {}; {}", result.network.detail, result.exec.detail);
    return;
  }
  std::string message = "enforcement canary failed:";
  if (!result.network.passed) message += " network: " + result.network.detail + ";";
  if (!result.exec.passed) message += " exec: " + result.exec.detail + ";";
  message.pop_back();
  spdlog::error("{}", message);
  Event trigger;
  trigger.task.tgid = trigger.task.pid = static_cast<uint32_t>(getpid());
  trigger.task.comm = "palisade";
  trigger.wall_ns = base::wall_now_ns();
  detector_->raise(canary_rule(), message, trigger);
}

namespace {

// Said at start, by name, rather than as a raw EPERM from whichever call comes first.
void check_live_privileges(bool enforcement) {
  std::vector<std::pair<int, std::string>> needed = {
      {CAP_BPF, "CAP_BPF (load the eBPF programs)"},
      {CAP_PERFMON, "CAP_PERFMON (attach them to tracepoints)"},
      {CAP_SYS_ADMIN, "CAP_SYS_ADMIN (fanotify, mounting tracefs and bpffs)"},
      {CAP_SYS_PTRACE, "CAP_SYS_PTRACE (read every process's /proc entries)"},
      {CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH (hash and inspect any file)"}};
  if (enforcement) needed.emplace_back(CAP_NET_ADMIN, "CAP_NET_ADMIN (cgroup network programs)");
  const std::vector<std::string> missing = base::missing_capabilities(needed);
  if (missing.empty()) return;
  std::string message =
      "palisade agent runs as root or with these capabilities; this process "
      "(uid " +
      std::to_string(geteuid()) + ") lacks:";
  for (const auto& m : missing) message += "\n  " + m;
  message += "\n(run it as root; --replay needs none of them)";
  throw SensorError(message);
}

}  // namespace

int Agent::run() {
  table_ = std::make_unique<ProcessTable>(config_.process_table);
  ocsf::HostInfo host = ocsf::HostInfo::detect();
  int64_t wall_offset = base::current_wall_offset_ns();
  if (!options_.replay_path.empty()) {
    auto recorded = std::make_unique<RecordedSource>(options_.replay_path);
    wall_offset = recorded->header().wall_offset_ns;
    host.boot_wall_offset_ns = recorded->header().boot_wall_offset_ns;
    source_ = std::move(recorded);
  } else {
    auto live = LiveSensor::start(config_.sensor);
    std::cerr << live->capabilities().to_text() << std::flush;
    live_ = live.get();
    source_ = std::move(live);
  }
  formatter_ = std::make_shared<ocsf::Formatter>(host);
  open_outputs();
  {
    std::string errors;
    std::vector<policies::Diagnostic> resource_errors;
    auto policy = compile_policy(errors, resource_errors);
    if (!policy) throw std::runtime_error("the policies do not compile:\n" + errors);
    prepare_policy(*policy);
    detector_->set_policy(policy);
    spdlog::info("policy {} loaded: {} rules ({}built-in defaults, directory {})", policy->digest(),
                 policy->rules().size(), config_.default_rules ? "" : "no ",
                 config_.policy_directory);
  }
  start_enforcement();
  bind_enforcement(true);
  if (options_.replay_path.empty()) fim_->protect(*detector_->policy());
  run_canary();
  next_canary_ = std::chrono::steady_clock::now() +
                 std::chrono::seconds(config_.enforcement.canary_interval_seconds);
  pipeline_->set_wall_offset_ns(wall_offset);
  if (!options_.record_path.empty()) {
    capture_ = std::make_unique<CaptureWriter>(
        options_.record_path, CaptureHeader{wall_offset, host.boot_wall_offset_ns});
    pipeline_->set_tap(capture_.get());
  }
  spdlog::info("palisade agent running (pid {}), source: {}", getpid(), source_->describe());
  start_metrics();
  watch_files();
  emit_status("running", "palisade agent started");

  const RecordCallback deliver = [this](RecordView record) { pipeline_->handle(record); };
  auto next_status =
      std::chrono::steady_clock::now() + std::chrono::seconds(config_.status_interval_seconds);
  while (!runtime::ControlSignals::stop_requested()) {
    bool more = source_->poll(std::chrono::milliseconds(config_.sensor.max_latency_ms), deliver);
    if (enforcer_) {
      enforcer_->poll(deliver);
      // An agent that adopted pinned enforcement releases nothing until it has seen the
      // containers (or 30 s have passed): a workload it has not seen yet keeps its rules.
      if (!sources_synced_) {
        const bool containerd_synced = !containerd_ || containerd_->status().syncs > 0;
        if (containerd_synced ||
            std::chrono::steady_clock::now() - started_ > std::chrono::seconds(30)) {
          sources_synced_ = true;
          enforcer_->sources_synced();
          next_rebind_ = {};
          binding_signature_.clear();
        }
      }
      // A container the runtime just reported is bound at once, not at the next rescan: until
      // then it has the unidentified posture.
      const uint64_t generation = containers_->generation();
      if (generation != containers_generation_ ||
          std::chrono::steady_clock::now() >= next_rebind_) {
        containers_generation_ = generation;
        bind_enforcement(false);
        next_rebind_ = std::chrono::steady_clock::now() +
                       std::chrono::milliseconds(config_.enforcement.rescan_ms);
      }
      if (config_.enforcement.canary_interval_seconds > 0 &&
          std::chrono::steady_clock::now() >= next_canary_) {
        run_canary();
        next_canary_ = std::chrono::steady_clock::now() +
                       std::chrono::seconds(config_.enforcement.canary_interval_seconds);
      }
    }
    fim_->tick(
        [this](const nlohmann::json& record, uint32_t pid) { emit_remediation(record, pid, ""); },
        [this](const fim::FileChange& change, const Event* trigger) {
          report_drift(change, trigger);
        });
    pipeline_->flush();
    if (capture_) capture_->flush();
    if (runtime::ControlSignals::take_reload()) reload();
    reload_changed_files();
    if (kubernetes_) {
      if (auto update = kubernetes_->take_policy_update()) {
        resource_sources_ = std::move(*update);
        reload_policy();
      }
    }
    if (std::chrono::steady_clock::now() >= next_status) {
      emit_status("running", "palisade agent status");
      next_status =
          std::chrono::steady_clock::now() + std::chrono::seconds(config_.status_interval_seconds);
    }
    if (metrics_ && std::chrono::steady_clock::now() >= next_metrics_) {
      publish_metrics();
      next_metrics_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
    if (!more) break;
  }
  // Drain what the kernel already handed over, then flush every output. Kernel enforcement stays
  // pinned: stopping the agent does not lift it (`palisade agent --uninstall` does).
  if (live_ != nullptr) source_->poll(std::chrono::milliseconds(0), deliver);
  if (enforcer_) enforcer_->poll(deliver);
  pipeline_->flush();
  outputs_->drain();
  if (containerd_) containerd_->stop();
  if (kubernetes_) kubernetes_->stop();
  publish_metrics();
  emit_status("stopped", "palisade agent stopped");
  spdlog::info("palisade agent stopped; {} events delivered", pipeline_->stats().delivered);
  return 0;
}

int run_agent(const AgentOptions& options) {
  runtime::ControlSignals::install();
  try {
    // Before anything touches the filesystem or the kernel: what is wrong is said by name.
    runtime::check_status_file_path(options.config.status_file);
    if (!options.config.file_group.empty()) {
      base::set_reader_group(base::group_id(options.config.file_group, "file_group"));
    }
    if (options.replay_path.empty()) check_live_privileges(options.config.enforcement.enabled);
    Agent agent(options);
    return agent.run();
  } catch (const SensorError& e) {
    spdlog::critical("cannot start the sensor: {}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}

}  // namespace palisade::agent

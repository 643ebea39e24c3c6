#include "palisade/agent/agent.h"

#include <arpa/inet.h>
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

#include "agent/file_integrity.h"
#include "container/containerd_watcher.h"
#include "kubernetes/kubernetes_link.h"
#include "palisade/agent/capture.h"
#include "palisade/agent/container.h"
#include "palisade/agent/enforcer.h"
#include "palisade/agent/respond.h"
#include "palisade/base/atomic_file.h"
#include "palisade/base/cgroup.h"
#include "palisade/base/clock.h"
#include "palisade/base/error.h"
#include "palisade/k8s/peers.h"
#include "palisade/ocsf/remediation.h"
#include "palisade/runtime/detector.h"
#include "palisade/runtime/json_lines_sink.h"
#include "palisade/runtime/responder.h"

namespace palisade::agent {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void on_signal(int signo) {
  if (signo == SIGHUP) {
    g_reload = true;
  } else {
    g_stop = true;
  }
}

void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: the ring-buffer poll must wake up
  for (int signo : {SIGTERM, SIGINT, SIGHUP}) sigaction(signo, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

long resident_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

// Hands file events to the file-integrity monitor, which confirms them against the baseline.
class FileIntegritySink : public runtime::EventSink {
 public:
  explicit FileIntegritySink(FileIntegrity& fim) : fim_(fim) {}
  void consume(const Event& event, std::string_view) override { fim_.observe(event); }

 private:
  FileIntegrity& fim_;
};

class Agent {
 public:
  explicit Agent(const AgentOptions& options) : options_(options), config_(options.config) {}

  int run();

 private:
  void open_outputs();
  void start_containers();
  void start_enforcement();
  void bind_enforcement(bool force);
  void run_canary();
  void prepare_policy(policies::PolicySet& set) const;
  std::vector<PeerAddress> peer_addresses(const policies::PeerSelector& selector) const;
  void report_drift(const fim::FileChange& change, const Event* trigger);
  void respond(const policies::Finding& finding, const Event& event);
  std::string carry_out(policies::Response response, const Event& event, nlohmann::json& record,
                        bool& ok);
  void emit_remediation(const nlohmann::json& record, uint32_t pid, const std::string& exe);
  void reload();
  void reload_policy();
  std::shared_ptr<policies::PolicySet> compile_policy(
      std::string& errors, std::vector<policies::Diagnostic>& resource_errors) const;
  nlohmann::json status_json(const char* state);
  nlohmann::json containers_status() const;
  void emit_status(const char* state, const char* message);

  AgentOptions options_;
  AgentConfig config_;
  std::unique_ptr<Source> source_;
  LiveSensor* live_ = nullptr;
  std::shared_ptr<ocsf::Formatter> formatter_;
  std::unique_ptr<ProcessTable> table_;
  std::unique_ptr<runtime::JsonLinesSink> stdout_sink_;
  std::unique_ptr<runtime::JsonLinesSink> file_sink_;
  std::unique_ptr<runtime::EventStore> store_;
  std::unique_ptr<CaptureWriter> capture_;
  std::unique_ptr<runtime::Detector> detector_;
  std::string policy_error_;  // the last rejected reload, for the status
  std::unique_ptr<Pipeline> pipeline_;
  std::shared_ptr<ContainerRegistry> containers_;
  std::unique_ptr<ContainerResolver> resolver_;
  std::unique_ptr<ContainerdWatcher> containerd_;
  std::unique_ptr<KubernetesLink> kubernetes_;
  std::unique_ptr<Enforcer> enforcer_;
  std::unique_ptr<FileIntegrity> fim_;
  std::unique_ptr<runtime::EventSink> fim_sink_;
  std::string enforcement_error_;  // why enforcement is off, when it is
  std::string binding_signature_;  // what the kernel maps say now, to skip unchanged rebinds
  std::chrono::steady_clock::time_point next_rebind_{};
  std::chrono::steady_clock::time_point next_canary_{};
  uint64_t containers_generation_ = 0;
  bool sources_synced_ = false;
  nlohmann::json last_canary_;
  std::unique_ptr<runtime::Responder> responder_;
  std::vector<policies::PolicySource> resource_sources_;  // from PalisadePolicy resources
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  uint64_t status_count_ = 0;
};

void Agent::open_outputs() {
  std::vector<runtime::EventSink*> sinks;
  if (config_.stdout_output) {
    stdout_sink_ = std::make_unique<runtime::JsonLinesSink>(stdout, formatter_);
    sinks.push_back(stdout_sink_.get());
  }
  if (!config_.json_file.empty()) {
    file_sink_ = runtime::JsonLinesSink::open_file(config_.json_file, formatter_);
    sinks.push_back(file_sink_.get());
  }
  if (config_.store_enabled) {
    store_ = std::make_unique<runtime::EventStore>(config_.store, formatter_);
    sinks.push_back(store_.get());
  }
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
    const auto peers = kubernetes_->peers();
    signature += ";peers=" + std::to_string(peers ? peers->generation : 0);
  }
  if (!force && signature == binding_signature_) return;
  binding_signature_ = std::move(signature);
  enforcer_->apply(policy, bindings, identified);
  spdlog::info("enforcement: {} workload cgroup(s) bound to policies", bindings.size());
}

void Agent::emit_remediation(const nlohmann::json& record, uint32_t pid, const std::string& exe) {
  const std::string line = record.dump();
  if (stdout_sink_) stdout_sink_->write_line(line);
  if (file_sink_) file_sink_->write_line(line);
  if (store_) {
    store_->consume_audit(record.value("class_uid", 0), record.value("time", int64_t{0}), pid, exe,
                          0, line);
  }
}

// Carries out one response; returns what was done (or why not) and fills the acted-on object.
std::string Agent::carry_out(policies::Response response, const Event& event,
                             nlohmann::json& record, bool& ok) {
  using policies::Response;
  const uint32_t pid = event.task.tgid;
  switch (response) {
    case Response::kKill: {
      const KillReport report = kill_process(pid, false);
      ok = !report.killed.empty();
      record["process"] = {{"pid", pid},
                           {"file", {{"path", event.process ? event.process->exe : ""}}}};
      record["unmapped"]["palisade"]["killed_pids"] = report.killed;
      if (ok) return "killed process " + std::to_string(pid);
      return "could not kill " + std::to_string(pid) +
             (report.failed.empty() ? std::string() : ": " + report.failed[0].second);
    }
    case Response::kIsolate: {
      const uint64_t cgroup = event.task.cgroup_id;
      record["unmapped"]["palisade"]["cgroup_id"] = cgroup;
      std::string error = "kernel enforcement is not active";
      const uint64_t own = base::cgroup_id_of_process(static_cast<uint32_t>(getpid()));
      if (cgroup == 0 || cgroup == base::cgroup_id_of_path("/") || cgroup == own) {
        error = "refused: the event's cgroup is the host's root cgroup or the agent's own";
      } else if (enforcer_) {
        ok = set_isolation(config_.enforcement.options.pin_root, cgroup, true, error);
      }
      return ok ? "cgroup " + std::to_string(cgroup) + " cut off the network" : error;
    }
    case Response::kQuarantine: {
      std::string path = class_of(event.kind) == EventClass::kFile ? event.path
                         : event.process                           ? event.process->exe
                                                                   : event.exe;
      if (event.kind == EventKind::kFileRename) path = event.path2;
      record["file"] = {{"path", path}};
      try {
        const QuarantineRecord q = quarantine_file(path, config_.responses.quarantine_directory);
        ok = true;
        record["file"]["hashes"] = {
            {{"algorithm_id", 3}, {"algorithm", "SHA-256"}, {"value", q.sha256}}};
        record["unmapped"]["palisade"]["quarantined_path"] = q.quarantined_path;
        return "moved to " + q.quarantined_path + ", permissions removed";
      } catch (const std::exception& e) {
        return e.what();
      }
    }
    default:
      ok = true;  // block happened in the kernel; restore is the file-integrity monitor's
      return "carried out by enforcement";
  }
}

void Agent::respond(const policies::Finding& finding, const Event& event) {
  using policies::Response;
  const Response response = finding.rule->response;
  // A replay describes another time (and often another machine): nothing is acted on.
  // VM responses are the hypervisor monitor's (palisade hv); a node has no VM to act on.
  if (!config_.responses.enabled || response == Response::kBlock ||
      policies::is_vm_response(response) || !options_.replay_path.empty())
    return;
  if (response == Response::kRestore) {
    // The sensor saw the write-open; the file integrity monitor restores once the write is done.
    if (class_of(event.kind) == EventClass::kFile && options_.replay_path.empty()) {
      fim_->schedule_restore(event.path, event);
    }
    return;
  }
  using ocsf::RemediationActivity;
  using ocsf::RemediationClass;
  const RemediationClass cls = response == Response::kKill      ? RemediationClass::kProcess
                               : response == Response::kIsolate ? RemediationClass::kNetwork
                                                                : RemediationClass::kFile;
  const RemediationActivity activity = response == Response::kKill ? RemediationActivity::kEvict
                                       : response == Response::kRestore
                                           ? RemediationActivity::kRestore
                                           : RemediationActivity::kIsolate;
  nlohmann::json record = ocsf::remediation_event(
      cls, activity, false, "", responder_->requester(finding.rule->name, finding.message));
  runtime::ResponseOutcome outcome;
  if (std::optional<runtime::ResponseOutcome> refused = responder_->admit()) {
    outcome = std::move(*refused);
  } else {
    outcome.detail = carry_out(response, event, record, outcome.ok);
  }
  record["unmapped"]["palisade"]["trigger_pid"] = event.task.tgid;
  emit_remediation(responder_->audit(std::move(record), outcome, finding.rule->name,
                                     policies::response_name(response)),
                   event.task.tgid, event.process ? event.process->exe : "");
}

// What a rescan of the operator's baseline found changed: a finding per change.
void Agent::report_drift(const fim::FileChange& change, const Event* trigger) {
  static const policies::DetectionRule rule = [] {
    policies::DetectionRule r;
    r.name = "file-integrity-baseline-drift";
    r.description = "A file differs from the approved baseline (palisade fim baseline)";
    r.severity = policies::Severity::kMedium;
    r.tags = {"file-integrity"};
    r.source = "<agent>";
    return r;
  }();
  // Seen as it happened: the finding names who did it (the file event, with its process,
  // ancestry and user) and what the baseline says changed. Found by a rescan: only what changed.
  if (trigger != nullptr) {
    detector_->raise(rule, describe(change) + " (confirmed against the baseline)", *trigger);
    return;
  }
  Event self;
  self.kind = EventKind::kUnknown;
  self.task.tgid = self.task.pid = static_cast<uint32_t>(getpid());
  self.task.comm = "palisade";
  self.path = change.path;
  self.wall_ns = base::wall_now_ns();
  detector_->raise(rule, describe(change), self);
}

namespace {

std::optional<PeerAddress> parse_ip(const std::string& text) {
  PeerAddress a;
  a.family = text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  if (inet_pton(a.family, text.c_str(), a.addr.data()) != 1) return std::nullopt;
  return a;
}

}  // namespace

// What a compiled policy needs from the agent: the host name, and the pods' addresses for rules
// that name peers by workload (from the Kubernetes API; without it such rules match nothing).
void Agent::prepare_policy(policies::PolicySet& set) const {
  set.set_hostname(formatter_->host().hostname);
  if (!kubernetes_) return;
  set.set_peer_lookup([link = kubernetes_.get()](const policies::PeerSelector& selector,
                                                 uint16_t family,
                                                 const std::array<uint8_t, 16>& addr) {
    const auto peers = link->peers();
    if (!peers) return false;
    char text[INET6_ADDRSTRLEN] = {};
    if (inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr.data(), text, sizeof(text)) ==
        nullptr) {
      return false;
    }
    auto it = peers->by_ip.find(text);
    return it != peers->by_ip.end() &&
           selector.matches(it->second->namespace_name, it->second->labels);
  });
}

std::vector<PeerAddress> Agent::peer_addresses(const policies::PeerSelector& selector) const {
  std::vector<PeerAddress> out;
  const auto peers = kubernetes_ ? kubernetes_->peers() : nullptr;
  if (!peers) return out;
  for (const auto& pod : peers->pods) {
    if (!selector.matches(pod->namespace_name, pod->labels)) continue;
    for (const auto& ip : pod->ips) {
      if (auto a = parse_ip(ip)) out.push_back(*a);
    }
  }
  return out;
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

std::shared_ptr<policies::PolicySet> Agent::compile_policy(
    std::string& errors, std::vector<policies::Diagnostic>& resource_errors) const {
  std::vector<policies::Diagnostic> diagnostics;
  std::shared_ptr<policies::PolicySet> set;
  try {
    std::vector<policies::PolicySource> sources =
        runtime::agent_policy_sources(config_.policy_directory, config_.default_rules);
    // Documents from custom resources, one resource at a time on top of what was accepted so
    // far: a resource that does not compile there (its own mistake, or a name another resource
    // already took) is left out and its status says why. One team's mistake cannot hold back the
    // others'. (A bad local file rejects the whole set, as before.)
    std::map<std::string, std::vector<policies::PolicySource>> by_resource;
    for (const auto& source : resource_sources_) {
      by_resource[source.name.substr(0, source.name.find('#'))].push_back(source);
    }
    for (const auto& [key, docs] : by_resource) {
      std::vector<policies::PolicySource> trial = sources;
      trial.insert(trial.end(), docs.begin(), docs.end());
      std::vector<policies::Diagnostic> trial_errors;
      if (auto accepted = policies::PolicySet::compile(trial, trial_errors)) {
        sources = std::move(trial);
        set = std::move(accepted);  // the set with everything accepted so far
      } else {
        // Errors in the node's own documents are the final compile's to report; a resource
        // refused without an error of its own is told so.
        bool named = false;
        for (auto& d : trial_errors) {
          if (d.source.rfind(key + "#", 0) != 0) continue;
          named = true;
          resource_errors.push_back(std::move(d));
        }
        if (!named) {
          resource_errors.push_back(policies::Diagnostic{
              key + "#", 0, 0, "documents", "not loaded: the node's policy documents have errors"});
        }
      }
    }
    // The last accepted trial already is the whole set; without one, compile the node's own.
    if (!set) set = policies::PolicySet::compile(sources, diagnostics);
  } catch (const std::exception& e) {
    errors = e.what();
    return nullptr;
  }
  for (const auto& d : diagnostics) {
    errors += (errors.empty() ? "" : "\n") + d.to_string();
    if (d.source.find('#') != std::string::npos) resource_errors.push_back(d);
  }
  return set;
}

void Agent::reload() {
  if (options_.config_path.empty()) {
    spdlog::info("SIGHUP: no --config file; re-reading the policies only");
    reload_policy();
    return;
  }
  try {
    AgentConfig next = load_config_file(options_.config_path);
    // Reloadable live: path rules, status cadence, log level, and the JSON file (reopened, which
    // also serves log rotation). Buffer sizes and the store path need a restart.
    config_.sensor.file_rules = next.sensor.file_rules;
    config_.status_interval_seconds = next.status_interval_seconds;
    config_.log_level = next.log_level;
    spdlog::set_level(spdlog::level::from_str(config_.log_level));
    pipeline_->set_path_rules(config_.sensor.file_rules);
    if (live_ != nullptr) live_->set_file_rules(config_.sensor.file_rules);
    config_.policy_directory = next.policy_directory;
    config_.default_rules = next.default_rules;
    if (file_sink_) file_sink_->flush();
    spdlog::info("configuration reloaded from {}", options_.config_path);
  } catch (const std::exception& e) {
    spdlog::error("configuration reload rejected, keeping the previous one: {}", e.what());
  }
  reload_policy();
}

void Agent::reload_policy() {
  std::string errors;
  std::vector<policies::Diagnostic> resource_errors;
  auto set = compile_policy(errors, resource_errors);
  if (!set) {
    policy_error_ = errors;
    spdlog::error("policy reload rejected, keeping policy {}:\n{}", detector_->policy()->digest(),
                  errors);
  } else {
    policy_error_.clear();
    prepare_policy(*set);
    detector_->set_policy(set);
    spdlog::info("policy {} loaded: {} rules", set->digest(), set->rules().size());
    bind_enforcement(true);
    if (options_.replay_path.empty()) fim_->protect(*set);
  }
  if (kubernetes_) {
    kubernetes_->report_policy_result(set != nullptr, resource_errors,
                                      detector_->policy()->digest());
  }
}

nlohmann::json Agent::status_json(const char* state) {
  using nlohmann::json;
  PipelineStats stats = pipeline_->stats();
  SourceCounters source = source_->counters();
  if (enforcer_)
    source.kernel_drops[static_cast<size_t>(EventClass::kEnforcement)] = enforcer_->lost();
  json classes = json::object();
  for (size_t i = 0; i < kEventClassCount; ++i) {
    const ClassCounters& c = stats.classes[i];
    classes[std::string(class_name(static_cast<EventClass>(i)))] = {
        {"received", c.received},
        {"lost", c.lost},
        {"kernel_drops", source.kernel_drops[i]},
        {"last_loss_time_ms", c.last_loss_wall_ns / 1'000'000ULL}};
  }
  ProcessTableStats t = table_->stats();
  json status = {
      {"state", state},
      {"pid", getpid()},
      {"time_ms", base::wall_now_ns() / 1'000'000ULL},
      {"uptime_s",
       std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
           .count()},
      {"source", source_->describe()},
      {"config", options_.config_path.empty() ? "<built-in defaults>" : options_.config_path},
      {"events", classes},
      {"delivered", stats.delivered},
      {"filtered", stats.filtered},
      {"malformed", stats.malformed},
      {"resident_kib", resident_kib()},
      {"process_table",
       {{"entries", t.entries},
        {"bytes", t.bytes},
        {"evicted_exited", t.evicted_exited},
        {"evicted_forced", t.evicted_forced}}},
  };
  if (store_) {
    runtime::StoreStats s = store_->stats();
    status["store"] = {{"path", config_.store.path},   {"written", s.written},
                       {"not_written", s.not_written}, {"queue_waits", s.queue_waits},
                       {"pruned", s.pruned},           {"write_errors", s.write_errors}};
  }
  if (live_ != nullptr) status["capabilities"] = json::parse(live_->capabilities().to_json());
  const auto& policy = detector_->policy();
  status["policy"] = {{"digest", policy ? policy->digest() : ""},
                      {"rules", policy ? policy->rules().size() : 0},
                      {"directory", config_.policy_directory},
                      {"default_rules", config_.default_rules},
                      {"findings", detector_->findings()},
                      {"threshold_keys", policy ? policy->threshold_keys() : 0},
                      {"last_rejected_reload", policy_error_}};
  status["containers"] = containers_status();
  if (kubernetes_) status["kubernetes"] = kubernetes_->status();
  status["file_integrity"] = fim_->status();
  status["responses"] = responder_->status();
  status["responses"]["enabled"] = config_.responses.enabled;
  if (enforcer_) {
    status["enforcement"] = enforcer_->status();
    status["enforcement"]["active"] = true;
    status["enforcement"]["canary"] = last_canary_;
  } else {
    status["enforcement"] = {{"active", false}, {"reason", enforcement_error_}};
  }
  const base::FileHashStats hashes = detector_->executable_hashes();
  status["policy"]["executable_hashes"] = {{"entries", hashes.entries},
                                           {"hits", hashes.hits},
                                           {"misses", hashes.misses},
                                           {"evictions", hashes.evictions},
                                           {"too_large", hashes.too_large}};
  return status;
}

nlohmann::json Agent::containers_status() const {
  const ContainerRegistryStats registry = containers_->stats();
  const ResolverStats resolved = resolver_->stats();
  nlohmann::json out = {{"known", registry.containers},
                        {"added", registry.added},
                        {"removed", registry.removed},
                        {"rejected_full", registry.rejected_full},
                        {"attributed_by_cgroup", resolved.by_cgroup},
                        {"attributed_by_cgroup_path", resolved.by_proc},
                        {"attributed_by_pid_namespace", resolved.by_pid_ns},
                        {"fetched_on_first_event", resolved.fetched},
                        {"unresolved", resolved.unresolved}};
  if (containerd_) {
    const ContainerdStatus s = containerd_->status();
    out["containerd"] = {{"socket", config_.containers.containerd_socket},
                         {"namespace", config_.containers.containerd_namespace},
                         {"connected", s.connected},
                         {"syncs", s.syncs},
                         {"events", s.events},
                         {"reconnects", s.reconnects},
                         {"last_error", s.last_error}};
  } else {
    out["containerd"] = {{"enabled", false}};
  }
  return out;
}

void Agent::emit_status(const char* state, const char* message) {
  nlohmann::json status = status_json(state);
  try {
    base::write_file_atomically(config_.status_file, status.dump(2) + "\n");
  } catch (const Error& e) {
    spdlog::warn("status file: {}", e.what());
  }
  std::string line;
  formatter_->format_agent_event(message, base::wall_now_ns(), status.dump(), line);
  if (stdout_sink_) stdout_sink_->write_line(line);
  if (file_sink_) file_sink_->write_line(line);
  uint64_t lost = 0;
  for (const auto& c : pipeline_->stats().classes) lost += c.lost;
  if (lost > 0) spdlog::warn("{} kernel events lost so far (see status)", lost);
  status_count_++;
  // Give bursts' freed memory back to the system: the resident size should reflect the load now.
  malloc_trim(0);
}

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
  emit_status("running", "palisade agent started");

  const RecordCallback deliver = [this](RecordView record) { pipeline_->handle(record); };
  auto next_status =
      std::chrono::steady_clock::now() + std::chrono::seconds(config_.status_interval_seconds);
  while (!g_stop) {
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
    if (g_reload.exchange(false)) reload();
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
    if (!more) break;
  }
  // Drain what the kernel already handed over, then flush every output. Kernel enforcement stays
  // pinned: stopping the agent does not lift it (`palisade agent --uninstall` does).
  if (live_ != nullptr) source_->poll(std::chrono::milliseconds(0), deliver);
  if (enforcer_) enforcer_->poll(deliver);
  pipeline_->flush();
  if (store_) store_->drain();
  if (containerd_) containerd_->stop();
  if (kubernetes_) kubernetes_->stop();
  emit_status("stopped", "palisade agent stopped");
  spdlog::info("palisade agent stopped; {} events delivered", pipeline_->stats().delivered);
  return 0;
}

}  // namespace

int run_agent(const AgentOptions& options) {
  install_signal_handlers();
  try {
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

int print_agent_status(const std::string& status_file, bool json) {
  std::ifstream in(status_file);
  if (!in) {
    std::cerr << "no agent status at " << status_file << " (is the agent running?)\n";
    return 3;
  }
  nlohmann::json status;
  try {
    status = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    std::cerr << status_file << ": unreadable status: " << e.what() << '\n';
    return 3;
  }
  const int pid = status.value("pid", 0);
  const bool alive = pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
  const std::string state = alive ? status.value("state", "unknown") : "not running";
  if (json) {
    status["state"] = state;
    std::cout << status.dump(2) << '\n';
    return alive ? 0 : 3;
  }
  std::cout << "state:      " << state << " (pid " << pid << ")\n";
  std::cout << "source:     " << status.value("source", "") << '\n';
  std::cout << "uptime:     " << status.value("uptime_s", 0) << " s\n";
  std::cout << "delivered:  " << status.value("delivered", 0) << " events ("
            << status.value("filtered", 0) << " filtered)\n";
  std::cout << "memory:     " << status.value("resident_kib", 0) << " KiB resident\n";
  std::cout << "class        received       lost  kernel_drops\n";
  for (const auto& [name, c] : status["events"].items()) {
    std::printf("%-10s %10llu %10llu %13llu\n", name.c_str(),
                static_cast<unsigned long long>(c.value("received", 0ULL)),
                static_cast<unsigned long long>(c.value("lost", 0ULL)),
                static_cast<unsigned long long>(c.value("kernel_drops", 0ULL)));
  }
  if (status.contains("policy")) {
    const auto& policy = status["policy"];
    std::cout << "policy:     " << policy.value("digest", "") << ", " << policy.value("rules", 0)
              << " rules, " << policy.value("findings", 0) << " findings\n";
    if (!policy.value("last_rejected_reload", "").empty()) {
      std::cout << "            last reload rejected:\n"
                << policy.value("last_rejected_reload", "") << '\n';
    }
  }
  if (status.contains("enforcement")) {
    const auto& e = status["enforcement"];
    if (!e.value("active", false)) {
      std::cout << "enforcement: inactive (" << e.value("reason", "") << ")\n";
    } else {
      std::cout << "enforcement: exec mechanism " << e.value("exec_mechanism", "") << ", "
                << e.value("workloads", nlohmann::json::array()).size() << " workload cgroup(s), "
                << e.value("denials", 0) << " denials"
                << (e.value("adopted", false) ? " (adopted pinned programs)" : "") << '\n';
      for (const auto& m : e.value("mechanisms", nlohmann::json::array())) {
        std::cout << "            " << m.value("state", "") << ": " << m.value("mechanism", "")
                  << (m.contains("detail") ? " — " + m.value("detail", "") : "") << '\n';
      }
      const auto& canary = e.value("canary", nlohmann::json());
      if (canary.is_object()) {
        std::cout << "canary:     " << (canary.value("passed", false) ? "passed" : "FAILED") << " ("
                  << canary["network"].value("detail", "") << "; "
                  << canary["exec"].value("detail", "") << ")\n";
      }
    }
  }
  if (status.contains("capabilities")) {
    const auto& caps = status["capabilities"];
    std::cout << "hooks:      " << caps.value("hooks_attached", 0) << "/"
              << caps.value("hooks_total", 0) << " attached; BPF-LSM " << caps.value("bpf_lsm", "")
              << '\n';
  }
  std::cout << std::flush;
  return alive ? 0 : 3;
}

}  // namespace palisade::agent

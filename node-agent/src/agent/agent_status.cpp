#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>

#include "agent/agent_impl.h"
#include "palisade/base/clock.h"
#include "palisade/base/proc.h"
#include "palisade/runtime/status_file.h"

namespace palisade::agent {
namespace {

uint64_t resident_kib() {
  const std::optional<base::ProcStatus> self = base::read_proc_status(0);
  return self ? self->rss_kib : 0;
}

}  // namespace

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
  status["outputs"] = outputs_->status();  // each output's counters under its kind's name
  if (live_ != nullptr) status["capabilities"] = json::parse(live_->capabilities().to_json());
  const auto& policy = detector_->policy();
  status["policy"] = {{"digest", policy ? policy->digest() : ""},
                      {"rules", policy ? policy->rules().size() : 0},
                      {"directory", config_.policy_directory},
                      {"default_rules", config_.default_rules},
                      {"findings", detector_->findings()},
                      {"threshold_keys", policy ? policy->threshold_keys() : 0},
                      {"last_rejected_reload", policy_error_}};
  status["configuration"] = {
      {"file", options_.config_path},
      {"watching", file_watch_ ? file_watch_->watched() : std::vector<std::string>{}},
      {"last_rejected_reload", config_error_}};
  if (metrics_) {
    status["metrics"] = {{"url", metrics_->url()}};
  } else {
    status["metrics"] = {{"enabled", false}};
    if (!metrics_error_.empty()) status["metrics"]["error"] = metrics_error_;
  }
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
  runtime::write_status_file(config_.status_file, status);
  std::string line;
  formatter_->format_agent_event(message, base::wall_now_ns(), status.dump(), line);
  runtime::OutOfBandRecord record;
  record.kind = runtime::OutOfBandRecord::Kind::kStatus;
  record.json = line;
  outputs_->write_record(record);
  uint64_t lost = 0;
  for (const auto& c : pipeline_->stats().classes) lost += c.lost;
  if (lost > 0) spdlog::warn("{} kernel events lost so far (see status)", lost);
  status_count_++;
  // Give bursts' freed memory back to the system: the resident size should reflect the load now.
  malloc_trim(0);
}

namespace {

// A fanotify guard's watched filesystems and its permission warden, for the human status.
void print_guard(const char* name, const nlohmann::json& guard) {
  if (!guard.is_object()) return;
  std::cout << name << ": ";
  if (guard.contains("watched")) {
    std::cout << guard["watched"].size() << " filesystem(s) watched, on timeout "
              << guard.value("on_timeout", "") << '\n';
    for (const auto& w : guard["watched"]) {
      std::cout << "            " << w.value("path", "") << " (" << w.value("why", "") << ")\n";
    }
  } else {
    std::cout << guard.value("marked", 0) << " path(s) marked\n";
  }
  const auto& warden = guard.value("warden", nlohmann::json());
  if (!warden.is_object()) return;
  std::cout << "            warden: ";
  if (!warden.value("running", false)) {
    std::cout << "NOT RUNNING" << (warden.contains("error") ? ": " + warden.value("error", "") : "")
              << '\n';
    return;
  }
  std::cout << "pid " << warden.value("pid", 0)
            << (warden.value("answering_now", false) ? ", ANSWERING FOR THE AGENT NOW" : "") << ", "
            << warden.value("takeovers", 0) << " takeover(s), answered "
            << warden.value("answered_allow", 0) << " allow / " << warden.value("answered_deny", 0)
            << " deny / " << warden.value("answered_unattributed", 0) << " unattributed, longest "
            << warden.value("longest_takeover_ms", 0) << " ms\n";
}

}  // namespace

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
  if (const auto& c = status.value("configuration", nlohmann::json::object());
      !c.value("last_rejected_reload", "").empty()) {
    std::cout << "config:     last reload REJECTED (the previous configuration is in force):\n"
              << c.value("last_rejected_reload", "") << '\n';
  }
  if (const auto& m = status.value("metrics", nlohmann::json::object()); m.contains("url")) {
    std::cout << "metrics:    " << m.value("url", "") << '\n';
  } else if (m.contains("error")) {
    std::cout << "metrics:    NOT SERVED: " << m.value("error", "") << '\n';
  }
  const nlohmann::json outputs = status.value("outputs", nlohmann::json::object());
  for (const auto& [name, o] : outputs.items()) {
    std::cout << "output:     " << name << " " << o.value("path", "");
    if (o.contains("written")) {
      std::cout << ": " << o.value("written", 0) << " written, " << o.value("not_written", 0)
                << " not written";
      const auto reasons = o.value("not_written_by_reason", nlohmann::json::object());
      if (o.value("not_written", 0) > 0) {
        std::cout << " (" << reasons.value("database_error", 0) << " database error, "
                  << reasons.value("low_disk_space", 0) << " low disk space)";
      }
      std::cout << ", " << o.value("write_errors", 0) << " failed batches";
      if (o.contains("paused")) std::cout << "; NOT WRITING: " << o.value("paused", "");
      if (o.contains("damaged_store_moved_to")) {
        std::cout << "; the damaged store found at start was moved to "
                  << o.value("damaged_store_moved_to", "");
      }
    } else {
      std::cout << ": " << o.value("lines", 0) << " lines";
      if (o.value("not_written", 0) > 0) {
        std::cout << ", " << o.value("not_written", 0) << " NOT WRITTEN ("
                  << o.value("write_errors", 0) << " failed writes)";
      }
    }
    std::cout << '\n';
  }
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
      print_guard("exec guard", e.value("exec_guard", nlohmann::json()));
      print_guard("read-only guard", e.value("write_guard", nlohmann::json()));
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

#include <spdlog/spdlog.h>

#include <filesystem>

#include "agent/agent_impl.h"

namespace palisade::agent {

// What a compiled policy needs from the agent: the host name, and the pods' addresses for rules
// that name peers by workload (from the Kubernetes API; without it such rules match nothing).
void Agent::prepare_policy(policies::PolicySet& set) const {
  set.set_hostname(formatter_->host().hostname);
  if (!kubernetes_) return;
  set.set_peer_lookup([link = kubernetes_.get()](const policies::PeerSelector& selector,
                                                 uint16_t family,
                                                 const std::array<uint8_t, 16>& addr) {
    return link->peer_matches(selector, family, addr);
  });
}

std::vector<PeerAddress> Agent::peer_addresses(const policies::PeerSelector& selector) const {
  return kubernetes_ ? kubernetes_->peer_addresses(selector) : std::vector<PeerAddress>{};
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

// A ConfigMap mounted as a directory changes under the agent (the kubelet swaps its "..data"
// link); so does a file an operator edits. Either is reloaded as on SIGHUP, a moment after the
// last change (a swap is several renames), with the same refusal of an invalid file.
void Agent::watch_files() {
  if (!options_.replay_path.empty()) return;
  std::vector<base::DirectoryWatch::Target> targets;
  if (!options_.config_path.empty()) {
    const std::filesystem::path config = std::filesystem::absolute(options_.config_path);
    targets.push_back({config.parent_path().string(),
                       [name = config.filename().string()](std::string_view changed) {
                         return changed == name || base::is_kubelet_swap(changed);
                       }});
  }
  if (!config_.policy_directory.empty()) {
    targets.push_back({config_.policy_directory, [](std::string_view changed) {
                         return changed.ends_with(".yaml") || changed.ends_with(".yml") ||
                                base::is_kubelet_swap(changed);
                       }});
  }
  file_watch_ = std::make_unique<base::DirectoryWatch>(std::move(targets));
}

void Agent::reload_changed_files() {
  if (!file_watch_) return;
  constexpr auto kSettle = std::chrono::milliseconds(300);
  const auto now = std::chrono::steady_clock::now();
  if (file_watch_->changed()) reload_due_ = now + kSettle;
  if (reload_due_ == std::chrono::steady_clock::time_point{} || now < reload_due_) return;
  reload_due_ = {};
  spdlog::info("a configuration or policy file changed: reloading");
  reload();
}

void Agent::reload() {
  if (options_.config_path.empty()) {
    spdlog::info("SIGHUP: no --config file; re-reading the policies only");
    reload_policy();
    return;
  }
  try {
    AgentConfig next = load_config_file(options_.config_path);
    // Reloadable live: path rules, status cadence, log level, and the JSON file (reopened at its
    // path, which serves log rotation). Buffer sizes and output paths need a restart.
    config_.sensor.file_rules = next.sensor.file_rules;
    config_.status_interval_seconds = next.status_interval_seconds;
    config_.log_level = next.log_level;
    spdlog::set_level(spdlog::level::from_str(config_.log_level));
    pipeline_->set_path_rules(config_.sensor.file_rules);
    if (live_ != nullptr) live_->set_file_rules(config_.sensor.file_rules);
    config_.policy_directory = next.policy_directory;
    config_.default_rules = next.default_rules;
    outputs_->reopen();
    config_error_.clear();
    watch_files();  // the policy directory may have moved
    spdlog::info("configuration reloaded from {}", options_.config_path);
  } catch (const std::exception& e) {
    config_error_ = e.what();
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

}  // namespace palisade::agent

#include "palisade/runtime/detector.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "palisade/base/bounded_read.h"
#include "palisade/base/proc.h"

namespace palisade::runtime {

Detector::Detector(std::shared_ptr<ocsf::Formatter> formatter, std::vector<EventSink*> outputs)
    : formatter_(std::move(formatter)), outputs_(std::move(outputs)) {}

std::string executable_sha256(base::FileHashCache& cache, const Event& exec) {
  const std::string& exe = exec.process ? exec.process->exe : exec.exe;
  // The running image itself when it is still the file named (not replaced since the exec).
  if (!exe.empty() && base::read_proc_link(exec.task.tgid, "exe") == exe) {
    return cache.sha256(base::proc_path(exec.task.tgid, "exe"));
  }
  return exe.empty() ? std::string() : cache.sha256(exe);
}

void Detector::set_policy(std::shared_ptr<policies::PolicySet> policy) {
  if (policy) {
    policy->set_executable_hasher(
        [hashes = hashes_](const Event& exec) { return executable_sha256(*hashes, exec); });
  }
  policy_ = std::move(policy);
}

void Detector::consume(const Event& event, std::string_view ocsf) {
  if (!policy_) return;
  scratch_.clear();
  policy_->evaluate(event, scratch_);
  for (const auto& finding : scratch_) {
    json_.clear();
    formatter_->format_finding(finding.view(), event, ocsf, policy_->digest(), json_);
    for (EventSink* out : outputs_) out->consume_finding(json_, event);
    count_finding(finding.rule);
    if (responder_ && finding.rule != nullptr &&
        finding.rule->response != policies::Response::kAlert) {
      responder_(finding, event);
    }
  }
}

void Detector::raise(const policies::DetectionRule& rule, std::string message, const Event& trigger,
                     std::string verdict) {
  policies::Finding finding{&rule, std::move(message), 1, std::move(verdict)};
  std::string trigger_json;
  formatter_->format(trigger, trigger_json);
  json_.clear();
  formatter_->format_finding(finding.view(), trigger, trigger_json,
                             policy_ ? policy_->digest() : "", json_);
  for (EventSink* out : outputs_) out->consume_finding(json_, trigger);
  count_finding(&rule);
  if (responder_ && rule.response != policies::Response::kAlert) responder_(finding, trigger);
}

void Detector::count_finding(const policies::DetectionRule* rule) {
  findings_++;
  std::pair<std::string, std::string> key{"other", "unknown"};
  if (rule != nullptr) key = {rule->name, std::string(policies::severity_name(rule->severity))};
  auto it = findings_by_rule_.find(key);
  if (it == findings_by_rule_.end()) {
    if (findings_by_rule_.size() >= kMaxCountedRules) key.first = "other";
    it = findings_by_rule_.try_emplace(std::move(key), 0).first;
  }
  it->second++;
}

void Detector::add_metrics(metrics::Snapshot& snapshot) const {
  constexpr std::string_view kFindings = "palisade_findings_total";
  constexpr std::string_view kHelp = "Detection Findings raised, by rule and severity";
  if (policy_) {
    for (const auto& rule : policy_->rules()) {
      const std::pair<std::string, std::string> key{
          rule->name, std::string(policies::severity_name(rule->severity))};
      if (findings_by_rule_.count(key) == 0) {
        snapshot.counter(kFindings, kHelp, 0, {{"rule", key.first}, {"severity", key.second}});
      }
    }
  }
  for (const auto& [key, count] : findings_by_rule_) {
    snapshot.counter(kFindings, kHelp, static_cast<double>(count),
                     {{"rule", key.first}, {"severity", key.second}});
  }
  snapshot.gauge("palisade_policy_rules", "Rules in the active policy set",
                 policy_ ? static_cast<double>(policy_->rules().size()) : 0);
  snapshot.gauge("palisade_policy_info", "The active policy set's digest (value 1)", 1,
                 {{"digest", policy_ ? policy_->digest() : ""}});
  const base::FileHashStats hashes = hashes_->stats();
  snapshot.gauge("palisade_executable_hash_cache_entries", "Executables whose hash is cached",
                 static_cast<double>(hashes.entries));
  for (const auto& [result, count] :
       {std::pair{"hit", hashes.hits}, std::pair{"miss", hashes.misses}}) {
    snapshot.counter("palisade_executable_hash_lookups_total", "Executable hash lookups, by result",
                     static_cast<double>(count), {{"result", result}});
  }
  snapshot.counter("palisade_executable_hash_too_large_total",
                   "Executables not hashed: larger than the limit",
                   static_cast<double>(hashes.too_large));
  snapshot.counter("palisade_executable_hash_cache_evictions_total",
                   "Executable hashes evicted from the bounded cache",
                   static_cast<double>(hashes.evictions));
}

std::vector<policies::PolicySource> read_policy_directory(const std::string& directory) {
  namespace fs = std::filesystem;
  std::vector<policies::PolicySource> sources;
  std::error_code ec;
  if (directory.empty() || !fs::is_directory(directory, ec)) return sources;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    const auto ext = entry.path().extension();
    if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    // Bounded: PolicySet::compile refuses a source over the limit without parsing it.
    sources.push_back(policies::PolicySource{
        file.string(), base::read_file_prefix(file.string(), policies::kMaxPolicySourceBytes)});
  }
  return sources;
}

std::vector<policies::PolicySource> agent_policy_sources(const std::string& directory,
                                                         bool with_defaults) {
  std::vector<policies::PolicySource> sources;
  if (with_defaults) sources = policies::default_rule_sources();
  auto more = read_policy_directory(directory);
  sources.insert(sources.end(), more.begin(), more.end());
  return sources;
}

}  // namespace palisade::runtime

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
    findings_++;
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
  findings_++;
  if (responder_ && rule.response != policies::Response::kAlert) responder_(finding, trigger);
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

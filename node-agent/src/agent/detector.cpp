#include "palisade/agent/detector.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace palisade::agent {

Detector::Detector(std::shared_ptr<OcsfFormatter> formatter, std::vector<EventSink*> outputs)
    : formatter_(std::move(formatter)), outputs_(std::move(outputs)) {}

void Detector::consume(const Event& event, std::string_view ocsf) {
  if (!policy_) return;
  scratch_.clear();
  policy_->evaluate(event, scratch_);
  for (const auto& finding : scratch_) {
    json_.clear();
    formatter_->format_finding(finding, event, ocsf, policy_->digest(), json_);
    for (EventSink* out : outputs_) out->consume_finding(json_, event);
    findings_++;
  }
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
    std::ifstream in(file);
    if (!in) throw std::runtime_error(file.string() + ": cannot read policy file");
    std::stringstream text;
    text << in.rdbuf();
    sources.push_back(policies::PolicySource{file.string(), text.str()});
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

}  // namespace palisade::agent

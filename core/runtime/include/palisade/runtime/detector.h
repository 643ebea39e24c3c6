// Applies the active policy set to every event and hands Detection Findings to the outputs. It
// sits after the outputs in the pipeline, so a finding always follows the event it links to.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "palisade/base/file_hash_cache.h"
#include "palisade/metrics/metrics.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/policies/policy_set.h"
#include "palisade/runtime/event_sink.h"

namespace palisade::runtime {

class Detector : public EventSink {
 public:
  Detector(std::shared_ptr<ocsf::Formatter> formatter, std::vector<EventSink*> outputs);

  // Swaps the policy set in one step; the previous set (and its threshold state) is dropped.
  // Executable hashes outlive policy sets: the cache is the detector's.
  void set_policy(std::shared_ptr<policies::PolicySet> policy);
  const std::shared_ptr<policies::PolicySet>& policy() const { return policy_; }

  void consume(const Event& event, std::string_view ocsf) override;
  uint64_t findings() const { return findings_; }

  // A finding the agent raises itself (a failed enforcement canary), not a policy's.
  // The rule's response (when not alert) goes to the responder like a policy finding's.
  void raise(const policies::DetectionRule& rule, std::string message, const Event& trigger,
             std::string verdict = {});

  // Called for every finding whose rule asks for a response other than alert (kill, isolate,
  // quarantine, ...), after the finding went to the outputs.
  using Responder = std::function<void(const policies::Finding&, const Event&)>;
  void set_responder(Responder responder) { responder_ = std::move(responder); }
  base::FileHashStats executable_hashes() const { return hashes_->stats(); }
  // Findings by rule and severity (every rule of the set, 0 until it matches), the executable
  // hash cache and the active set's digest. From the pipeline's thread.
  void add_metrics(metrics::Snapshot& snapshot) const;
  // Rules counted apart before the rest go to rule="other": reloads may rename rules forever.
  static constexpr size_t kMaxCountedRules = 2048;

 private:
  std::shared_ptr<ocsf::Formatter> formatter_;
  std::vector<EventSink*> outputs_;
  std::shared_ptr<policies::PolicySet> policy_;
  std::shared_ptr<base::FileHashCache> hashes_ = std::make_shared<base::FileHashCache>();
  std::vector<policies::Finding> scratch_;
  Responder responder_;
  std::string json_;
  uint64_t findings_ = 0;
  std::map<std::pair<std::string, std::string>, uint64_t> findings_by_rule_;  // (rule, severity)
  void count_finding(const policies::DetectionRule* rule);
};

// The sha256 of an exec event's executable: the running image through /proc/<pid>/exe while the
// process still runs it, else the file at the path.
std::string executable_sha256(base::FileHashCache& cache, const Event& exec);

// Reads the policy documents of a directory (*.yaml, *.yml, sorted by name). A missing directory
// has no documents; an unreadable file is an error naming it.
std::vector<policies::PolicySource> read_policy_directory(const std::string& directory);

// The documents the agent runs with: the shipped defaults (unless disabled) and the directory's.
std::vector<policies::PolicySource> agent_policy_sources(const std::string& directory,
                                                         bool with_defaults);

}  // namespace palisade::runtime

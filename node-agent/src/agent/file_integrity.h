// The agent's side of file integrity: approved copies of the files that enforce-mode
// WorkloadPolicies protect (kept in the agent's own baseline, apart from the operator's), restores
// of those files after an unapproved change the eBPF sensor saw, and a periodic rescan of the
// operator's baseline (`palisade fim baseline`) that catches what changed while nobody watched.
// Everything runs on the agent's main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "palisade/fim/fim.h"
#include "palisade/model/event.h"
#include "palisade/policies/policy_set.h"

namespace palisade::agent {

struct FileIntegrityConfig {
  std::string database = "/var/lib/palisade/fim.db";  // the operator's baseline (palisade fim)
  std::string protect_database = "/var/lib/palisade/fim-protect.db";  // the agent's own
  std::string content_directory = "/var/lib/palisade/fim-content";
  uint32_t rescan_interval_seconds = 3600;  // 0 = never; also once at start
  // The sensor reports the open that precedes a write: restore after the writer had its chance,
  // and only when the content really differs from the approved copy.
  uint32_t restore_delay_ms = 200;
  size_t max_pending_restores = 1024;
  size_t max_drift_findings = 100;  // per rescan; the rest are counted
};

class FileIntegrity {
 public:
  using RemediationSink = std::function<void(nlohmann::json record, uint32_t pid)>;
  // A change against the operator's baseline; `trigger` is the file event that revealed it (null
  // for what a rescan found, which cannot say who made the change).
  using DriftSink = std::function<void(const fim::FileChange& change, const Event* trigger)>;

  explicit FileIntegrity(FileIntegrityConfig config);

  // Keeps approved copies of the paths enforce-mode policies protect (a policy load).
  void protect(const policies::PolicySet& set);
  // A protect violation in enforce mode: restore the file once the writer is done.
  void schedule_restore(const std::string& path, const Event& trigger);
  // A file event (pipeline thread): a path under the operator's baseline is confirmed against it
  // shortly after (the event is the open that precedes the write), attributed to the event.
  void observe(const Event& event);
  // Carries out due restores and confirmations and, when due, the rescan.
  void tick(const RemediationSink& remediation, const DriftSink& drift);
  nlohmann::json status() const;

 private:
  struct PendingRestore {
    std::string path;
    std::chrono::steady_clock::time_point due;
    uint32_t pid = 0;
    std::string exe;
  };
  struct PendingConfirm {
    std::string path;
    std::chrono::steady_clock::time_point due;
    Event trigger;  // who did it: process, ancestry, container (views shared, not copied)
  };
  fim::FimStore& protect_store();
  fim::FimStore* baseline_store();
  bool under_baseline(const std::string& path) const;
  void confirm_due(const DriftSink& drift);
  void restore(const PendingRestore& pending, const RemediationSink& remediation);
  void rescan(const DriftSink& drift);

  FileIntegrityConfig config_;
  std::unique_ptr<fim::FimStore> protect_store_;
  std::vector<std::string> protected_paths_;
  std::deque<PendingRestore> pending_;
  std::unique_ptr<fim::FimStore> baseline_store_;  // the operator's, opened once it exists
  std::vector<std::string> baseline_roots_;        // with a trailing '/', for prefix checks
  std::deque<PendingConfirm> confirms_;
  uint64_t confirmed_ = 0;
  uint64_t dropped_confirms_ = 0;
  std::chrono::steady_clock::time_point next_rescan_{};
  uint64_t restored_ = 0;
  uint64_t restore_failures_ = 0;
  uint64_t dropped_restores_ = 0;
  uint64_t rescans_ = 0;
  uint64_t drift_ = 0;
  std::string last_error_;
};

}  // namespace palisade::agent

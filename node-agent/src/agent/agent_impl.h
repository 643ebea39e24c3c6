// The node agent's composition, shared by the files that implement it: agent.cpp (start-up
// and the main loop), agent_policy.cpp (compiling and reloading policies), agent_responses.cpp
// (responses and their audit records) and agent_status.cpp (the status file and event). Not a
// public header: palisade/agent/agent.h is.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/file_integrity.h"
#include "container/containerd_watcher.h"
#include "kubernetes/kubernetes_link.h"
#include "palisade/agent/agent.h"
#include "palisade/agent/capture.h"
#include "palisade/agent/container.h"
#include "palisade/agent/enforcer.h"
#include "palisade/base/clock.h"
#include "palisade/base/directory_watch.h"
#include "palisade/metrics/metrics.h"
#include "palisade/runtime/detector.h"
#include "palisade/runtime/outputs.h"
#include "palisade/runtime/responder.h"

namespace palisade::agent {

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
  void watch_files();
  void reload_changed_files();
  void start_metrics();
  void publish_metrics();
  void add_container_metrics(metrics::Snapshot& s) const;
  void add_enforcement_metrics(metrics::Snapshot& s) const;

  AgentOptions options_;
  AgentConfig config_;
  std::unique_ptr<Source> source_;
  LiveSensor* live_ = nullptr;
  std::shared_ptr<ocsf::Formatter> formatter_;
  std::unique_ptr<ProcessTable> table_;
  std::unique_ptr<runtime::Outputs> outputs_;
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
  uint64_t started_wall_ns_ = base::wall_now_ns();
  // The configuration file's and the policy directory's changes, reloaded as on SIGHUP.
  std::unique_ptr<base::DirectoryWatch> file_watch_;
  std::chrono::steady_clock::time_point reload_due_{};
  std::string config_error_;  // why the last configuration reload was refused ("" = it was not)
  std::unique_ptr<metrics::Endpoint> metrics_;
  std::string metrics_error_;  // why there is no endpoint, when there is none
  std::chrono::steady_clock::time_point next_metrics_{};
  uint64_t status_count_ = 0;
};

}  // namespace palisade::agent

// The node agent's link to the Kubernetes API: pods of this node (their labels, service account
// and owning workload join the containers containerd reports), policies from PalisadePolicy and
// ClusterPalisadePolicy resources (load results written back to their status), and alerts
// published as Events on their pod. Everything runs on the k8s library's threads; the agent's
// pipeline thread only picks up finished results.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "palisade/agent/config.h"
#include "palisade/agent/container.h"
#include "palisade/agent/pipeline.h"
#include "palisade/policies/policy_set.h"

namespace palisade::k8s {
class Client;
class PodCache;
class PodWatcher;
class PolicyWatcher;
class EventPublisher;
class PeerDirectory;
class Reflector;
struct PeerSnapshot;
struct PolicyResource;
}  // namespace palisade::k8s

namespace palisade::agent {

// Policy documents from custom resources, each source named
// "<Kind>/<namespace>/<name>#documents[<i>]".
struct ResourcePolicies {
  std::vector<policies::PolicySource> sources;
};

// Turns resources into engine documents. A namespaced PalisadePolicy is confined to its
// namespace: its WorkloadPolicies select only that namespace (naming another is an error) and its
// DetectionRules match only events from it.
ResourcePolicies policies_from_resources(const std::vector<k8s::PolicyResource>& resources,
                                         std::vector<std::string>& errors_by_resource);

class KubernetesLink : public runtime::EventSink {
 public:
  // Null when the configuration leaves Kubernetes off (enabled: auto outside a cluster).
  static std::unique_ptr<KubernetesLink> create(const KubernetesConfig& config,
                                                std::shared_ptr<ContainerRegistry> registry);
  ~KubernetesLink() override;

  void start();
  void stop();

  // New policy documents from the resources since the last call (pipeline thread).
  std::optional<std::vector<policies::PolicySource>> take_policy_update();
  // Writes what became of the resources' documents into their status: accepted, or the errors
  // naming them. `errors` are the compiler's diagnostics, by source.
  void report_policy_result(bool accepted, const std::vector<policies::Diagnostic>& errors,
                            const std::string& digest);

  // Findings about pods become Kubernetes Events on them.
  void consume(const Event&, std::string_view) override {}
  void consume_finding(std::string_view ocsf_finding, const Event& trigger) override;

  nlohmann::json status() const;

  // Every pod of the cluster by IP, for network rules that name peers by workload; null until
  // the first list arrived.
  std::shared_ptr<const k8s::PeerSnapshot> peers() const;

 private:
  KubernetesLink(const KubernetesConfig& config, std::shared_ptr<ContainerRegistry> registry,
                 std::unique_ptr<k8s::Client> client, std::string source);
  void on_resources(const std::vector<k8s::PolicyResource>& resources);

  KubernetesConfig config_;
  std::shared_ptr<ContainerRegistry> registry_;
  std::string source_;  // "in-cluster" or the kubeconfig's path
  std::unique_ptr<k8s::Client> client_;
  std::unique_ptr<k8s::PodCache> pods_;
  std::unique_ptr<k8s::PodWatcher> pod_watcher_;
  std::unique_ptr<k8s::PolicyWatcher> policy_watcher_;
  std::unique_ptr<k8s::EventPublisher> publisher_;
  std::unique_ptr<k8s::PeerDirectory> peers_;
  std::unique_ptr<k8s::Reflector> peer_reflector_;

  mutable std::mutex mutex_;
  std::vector<k8s::PolicyResource> resources_;  // the set last delivered
  std::vector<std::string> resource_errors_;    // shape errors, parallel to resources_
  std::optional<std::vector<policies::PolicySource>> pending_;
  std::vector<k8s::PolicyResource> applied_;  // the set behind the last update taken
  std::vector<std::string> applied_errors_;
  struct Report {
    std::vector<k8s::PolicyResource> resources;
    std::vector<std::string> shape_errors;
    std::vector<policies::Diagnostic> errors;
    bool accepted = false;
    std::string digest;
  };
  void report_loop(std::stop_token stop);
  void send_report(const Report& report);
  std::mutex report_mutex_;
  std::condition_variable_any report_wake_;
  std::optional<Report> next_report_;  // the latest result not written yet
  std::jthread reporter_;              // writes policy status; declared last, stopped first
};

}  // namespace palisade::agent

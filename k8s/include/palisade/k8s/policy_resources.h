#pragma once
// The PalisadePolicy (namespaced) and ClusterPalisadePolicy (cluster-scoped) custom resources:
// each carries a list of policy documents for the node agent's policy engine.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "palisade/k8s/reflector.h"

namespace palisade::k8s {

inline constexpr const char* kPolicyApiVersion = "palisade.dev/v1";

struct PolicyDocument {
  std::string kind;  // DetectionRule, WorkloadPolicy, List, Macro
  nlohmann::json metadata = nlohmann::json::object();
  nlohmann::json spec = nlohmann::json::object();
  // {apiVersion: palisade.dev/v1, kind, metadata, spec}: what the policy engine loads.
  nlohmann::json to_document() const;
};

struct PolicyResource {
  std::string kind;            // PalisadePolicy or ClusterPalisadePolicy
  std::string namespace_name;  // empty for ClusterPalisadePolicy
  std::string name;
  std::string uid;
  std::int64_t generation = 0;
  std::string resource_version;
  std::vector<PolicyDocument> documents;
  std::vector<std::string> errors;  // shape problems found while reading spec.documents
};

// Builds a PolicyResource from a PalisadePolicy or ClusterPalisadePolicy object.
PolicyResource policy_resource_from_json(const nlohmann::json& object);

struct PolicyWatcherOptions {
  std::chrono::seconds watch_timeout{300};
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::size_t max_resources = 1024;  // per kind
};

struct PolicyStatusReport {
  bool accepted = false;
  std::vector<std::string> errors;  // first 20 kept, each cut to 512 bytes
  std::string policy_digest;
  std::string node_name;
};

// Watches both kinds and calls back with the full current set whenever a resource is added,
// deleted or its spec changes (its generation). Status-only updates do not call back, so
// reporting status never loops. The first call comes once both kinds have been listed, so the
// agent never sees a set missing the cluster-wide policies.
class PolicyWatcher {
 public:
  using Callback = std::function<void(const std::vector<PolicyResource>&)>;
  PolicyWatcher(Client& client, Callback callback, PolicyWatcherOptions options = {});
  ~PolicyWatcher();
  void start();
  void stop();
  bool wait_for_sync(std::chrono::milliseconds timeout) const;
  std::vector<PolicyResource> current() const;
  ReflectorStats stats(bool cluster_scoped) const;

  // PATCHes the resource's status subresource (merge patch): observedGeneration, an Accepted
  // condition, and this node's entry under status.nodes. Throws ApiError / TransportError.
  void report_status(const PolicyResource& resource, const PolicyStatusReport& report);

 private:
  class Sink;
  void publish_if_changed();

  Client& client_;
  Callback callback_;
  mutable std::mutex mu_;
  std::map<std::string, PolicyResource> resources_;  // "Kind/ns/name"
  std::map<std::string, std::int64_t> published_;    // uid -> generation last published
  bool published_once_ = false;
  std::mutex callback_mu_;  // one callback at a time, in order
  std::map<std::string, std::pair<bool, std::string>> transitions_;  // uid -> accepted, time
  std::unique_ptr<Sink> namespaced_sink_;
  std::unique_ptr<Sink> cluster_sink_;
  std::unique_ptr<Reflector> namespaced_;
  std::unique_ptr<Reflector> cluster_;
};

}  // namespace palisade::k8s

// The node agent's link to the Kubernetes API: pods of this node (their labels, service account
// and owning workload join the containers containerd reports), policies from PalisadePolicy and
// ClusterPalisadePolicy resources (load results written back to their status), alerts published
// as Events on their pod, and the pods' addresses for network rules that name peers by workload.
// Everything runs on the k8s library's threads; the agent's pipeline thread only picks up
// finished results. An interface: a build without Kubernetes (PALISADE_WITH_KUBERNETES=OFF) has
// no implementation and create() says so.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "palisade/agent/config.h"
#include "palisade/agent/container.h"
#include "palisade/agent/enforcer.h"
#include "palisade/policies/policy_set.h"
#include "palisade/runtime/event_sink.h"

namespace palisade::agent {

class KubernetesLink : public runtime::EventSink {
 public:
  // Null when the configuration leaves Kubernetes off (enabled: auto outside a cluster). Throws a
  // ConfigurationError for a broken kubeconfig or service-account mount, and for enabled: true in
  // a build without Kubernetes.
  static std::unique_ptr<KubernetesLink> create(const KubernetesConfig& config,
                                                std::shared_ptr<ContainerRegistry> registry);
  ~KubernetesLink() override = default;

  virtual void start() = 0;
  virtual void stop() = 0;

  // New policy documents from the resources since the last call (pipeline thread).
  virtual std::optional<std::vector<policies::PolicySource>> take_policy_update() = 0;
  // Writes what became of the resources' documents into their status: accepted, or the errors
  // naming them. `errors` are the compiler's diagnostics, by source.
  virtual void report_policy_result(bool accepted, const std::vector<policies::Diagnostic>& errors,
                                    const std::string& digest) = 0;

  virtual nlohmann::json status() const = 0;

  // Whether the pod at an address is one the selector names; false until the first pod list.
  virtual bool peer_matches(const policies::PeerSelector& selector, uint16_t family,
                            const std::array<uint8_t, 16>& addr) const = 0;
  // The current addresses of the pods a selector names (none until the first pod list).
  virtual std::vector<PeerAddress> peer_addresses(const policies::PeerSelector& selector) const = 0;
  // Changes whenever the pods' addresses may have (0 until the first pod list).
  virtual uint64_t peers_generation() const = 0;
};

}  // namespace palisade::agent

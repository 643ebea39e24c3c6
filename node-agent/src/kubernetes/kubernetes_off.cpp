// A build without Kubernetes (PALISADE_WITH_KUBERNETES=OFF): no API client, so no link.
#include <cstdlib>

#include "kubernetes/kubernetes_link.h"
#include "palisade/base/error.h"

namespace palisade::agent {

std::unique_ptr<KubernetesLink> KubernetesLink::create(const KubernetesConfig& config,
                                                       std::shared_ptr<ContainerRegistry>) {
  // Asked for explicitly, it is a configuration this build cannot honour: say so at start rather
  // than run without the pods' identity and the cluster's policies.
  if (config.enabled == "true" || !config.kubeconfig.empty()) {
    throw ConfigurationError(
        "kubernetes.enabled: this palisade was built without Kubernetes "
        "(PALISADE_WITH_KUBERNETES=OFF)");
  }
  return nullptr;
}

}  // namespace palisade::agent

// PalisadePolicy and ClusterPalisadePolicy resources as policy documents for the engine.
#pragma once

#include <string>
#include <vector>

#include "palisade/k8s/policy_resources.h"
#include "palisade/policies/policy_set.h"

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

}  // namespace palisade::agent

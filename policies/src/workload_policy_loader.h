// Internal: the policy loader hands WorkloadPolicy documents to workload_policy_loader.cpp.
#pragma once

#include <memory>

#include "document_reader.h"
#include "palisade/policies/policy_set.h"
#include "palisade/policies/workload_policy.h"

namespace palisade::policies {

std::unique_ptr<WorkloadPolicy> compile_workload(const detail::DocumentReader& r,
                                                 const detail::ParsedDocument& doc);

// Decisions of a WorkloadPolicy section are reported through a rule of their own.
std::unique_ptr<DetectionRule> decision_rule(const WorkloadPolicy& policy, const char* section,
                                             Mode mode);

}  // namespace palisade::policies

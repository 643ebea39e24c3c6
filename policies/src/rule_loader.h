// Internal: the policy loader hands DetectionRule documents to rule_loader.cpp.
#pragma once

#include <memory>

#include "document_reader.h"
#include "palisade/policies/policy_set.h"

namespace palisade::policies {

std::unique_ptr<DetectionRule> compile_rule(const detail::DocumentReader& r,
                                            const detail::ParsedDocument& doc,
                                            const Definitions& defs);

}  // namespace palisade::policies

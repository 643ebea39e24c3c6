// Internal: the policy loader hands VirtualMachinePolicy documents to vm_policy.cpp.
#pragma once

#include <memory>

#include "document_reader.h"
#include "palisade/policies/vm_policy.h"

namespace palisade::policies {

std::unique_ptr<VmPolicy> compile_vm_policy(const detail::DocumentReader& r,
                                            const detail::ParsedDocument& doc);

}  // namespace palisade::policies

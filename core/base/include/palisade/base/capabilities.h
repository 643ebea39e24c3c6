// The process's own capabilities, read from /proc/self/status (no libcap needed for a mask), so
// that a component can say at start which privilege it lacks instead of failing later on a raw
// EPERM.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace palisade::base {

// CapEff of /proc/self/status (base::read_proc_status): bit n set = capability n effective.
uint64_t effective_capabilities();

// The descriptions of the capabilities in `needed` (number, description) this process lacks.
std::vector<std::string> missing_capabilities(
    const std::vector<std::pair<int, std::string>>& needed);

}  // namespace palisade::base

// The status file a producer rewrites periodically (palisade agent status, palisade hv status,
// the DaemonSet's probes read it). Written atomically, so a reader never sees half of one; a
// failure is logged and the producer goes on: status is not worth stopping protection for.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace palisade::runtime {

// Throws ConfigurationError when the path cannot be a status file (a directory, or a path
// ending in '/'): checked at start, since a failed write later is only logged.
void check_status_file_path(const std::string& path);

// False (and logged) when it could not be written; an empty path writes nothing.
bool write_status_file(const std::string& path, const nlohmann::json& status);

}  // namespace palisade::runtime

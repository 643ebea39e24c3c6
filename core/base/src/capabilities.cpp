#include "palisade/base/capabilities.h"

#include "palisade/base/proc.h"

namespace palisade::base {

uint64_t effective_capabilities() {
  const std::optional<ProcStatus> status = read_proc_status(0);
  return status ? status->cap_eff : 0;
}

std::vector<std::string> missing_capabilities(
    const std::vector<std::pair<int, std::string>>& needed) {
  const uint64_t have = effective_capabilities();
  std::vector<std::string> missing;
  for (const auto& [number, description] : needed) {
    if ((have & (uint64_t{1} << number)) == 0) missing.push_back(description);
  }
  return missing;
}

}  // namespace palisade::base

#include "palisade/base/capabilities.h"

#include <fstream>

namespace palisade::base {

uint64_t effective_capabilities() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("CapEff:", 0) == 0) return std::stoull(line.substr(7), nullptr, 16);
  }
  return 0;
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

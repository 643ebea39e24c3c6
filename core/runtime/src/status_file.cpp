#include "palisade/runtime/status_file.h"

#include <spdlog/spdlog.h>

#include "palisade/base/atomic_file.h"
#include "palisade/base/error.h"

namespace palisade::runtime {

bool write_status_file(const std::string& path, const nlohmann::json& status) {
  if (path.empty()) return true;
  try {
    base::write_file_atomically(path, status.dump(2) + "\n");
    return true;
  } catch (const Error& e) {
    spdlog::warn("status file: {}", e.what());
    return false;
  }
}

}  // namespace palisade::runtime

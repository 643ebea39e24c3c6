#include "palisade/runtime/status_file.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "palisade/base/atomic_file.h"
#include "palisade/base/error.h"
#include "palisade/base/private_files.h"

namespace palisade::runtime {

void check_status_file_path(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  if (path.back() == '/' || std::filesystem::is_directory(path, ec)) {
    throw ConfigurationError("status file " + path + " is a directory: name a file in it (e.g. " +
                             (path.back() == '/' ? path : path + "/") + "status.json)");
  }
}

bool write_status_file(const std::string& path, const nlohmann::json& status) {
  if (path.empty()) return true;
  try {
    base::write_file_atomically(path, status.dump(2) + "\n", base::private_file_mode(),
                                base::reader_group());
    return true;
  } catch (const Error& e) {
    spdlog::warn("status file: {}", e.what());
    return false;
  }
}

}  // namespace palisade::runtime

#include "palisade/base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "palisade/base/errno_text.h"
#include "palisade/base/error.h"
#include "palisade/base/unique_fd.h"

namespace palisade::base {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what, int error) {
  throw EnvironmentError("cannot write " + path + ": " + what + " (" + errno_text(error) + ")");
}

void write_all(int fd, std::string_view text, const std::string& path) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, "write", errno);
    text.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

void write_file_atomically(const std::string& path, std::string_view text, mode_t mode,
                           std::optional<gid_t> group) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  if (path.empty() || !target.has_filename()) {
    throw EnvironmentError("cannot write '" + path + "': it names a directory, not a file");
  }
  std::error_code ec;
  if (fs::is_directory(target, ec)) {
    throw EnvironmentError("cannot write " + path + ": it is a directory");
  }
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  // A name of our own next to the target: rename() is atomic only within one filesystem, and two
  // writers (an agent and its successor) must not share a temporary file.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) fail(path, "create " + tmp, errno);
  try {
    write_all(fd.get(), text, path);
    if (group && ::fchown(fd.get(), static_cast<uid_t>(-1), *group) != 0) {
      fail(path, "chown", errno);
    }
    if (::fchmod(fd.get(), mode) != 0) fail(path, "chmod", errno);
    if (::fsync(fd.get()) != 0) fail(path, "fsync", errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) fail(path, "rename", errno);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace palisade::base

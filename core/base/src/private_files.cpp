#include "palisade/base/private_files.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <vector>

#include "palisade/base/errno_text.h"
#include "palisade/base/error.h"

namespace palisade::base {
namespace {

constexpr int64_t kNoGroup = -1;
std::atomic<int64_t> shared_group{kNoGroup};

}  // namespace

void set_reader_group(std::optional<gid_t> group) {
  shared_group.store(group ? static_cast<int64_t>(*group) : kNoGroup);
}

std::optional<gid_t> reader_group() {
  const int64_t group = shared_group.load();
  if (group == kNoGroup) return std::nullopt;
  return static_cast<gid_t>(group);
}

mode_t private_file_mode() {
  return reader_group() ? 0640 : 0600;
}

void share_with_reader_group(int fd, const std::string& path) {
  const std::optional<gid_t> group = reader_group();
  if (!group) return;
  if (::fchown(fd, static_cast<uid_t>(-1), *group) != 0 || ::fchmod(fd, 0640) != 0) {
    throw EnvironmentError("cannot give " + path + " to group " + std::to_string(*group) + ": " +
                           errno_text(errno));
  }
}

int open_private_file(const std::string& path, int flags) {
  const int created =
      ::open(path.c_str(), flags | O_CREAT | O_EXCL | O_CLOEXEC, private_file_mode());
  if (created < 0) return errno == EEXIST ? ::open(path.c_str(), flags | O_CLOEXEC) : -1;
  try {
    share_with_reader_group(created, path);
  } catch (...) {
    ::close(created);
    throw;
  }
  return created;
}

gid_t group_id(const std::string& name, const std::string& where) {
  std::vector<char> buffer(16384);
  group entry{};
  group* found = nullptr;
  const int error = getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (error != 0 || found == nullptr) {
    throw ConfigurationError(where + ": no group named '" + name + "' on this host");
  }
  return found->gr_gid;
}

}  // namespace palisade::base

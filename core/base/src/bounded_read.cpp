#include "palisade/base/bounded_read.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "palisade/base/errno_text.h"
#include "palisade/base/error.h"
#include "palisade/base/unique_fd.h"

namespace palisade::base {

std::string read_file_prefix(const std::string& path, size_t max_bytes) {
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) throw EnvironmentError("cannot read " + path + ": " + errno_text(errno));
  std::string text;
  char buffer[65536];
  while (text.size() <= max_bytes) {
    const size_t want = std::min(sizeof buffer, max_bytes + 1 - text.size());
    const ssize_t n = ::read(fd.get(), buffer, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw EnvironmentError("cannot read " + path + ": " + errno_text(errno));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace palisade::base

#include <sys/utsname.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <string>

#include "palisade/ocsf/formatter.h"

namespace palisade::ocsf {
namespace {

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

// Who is reporting: read once at start-up, from the host the producer runs on.
HostInfo HostInfo::detect() {
  HostInfo info;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0) info.hostname = name;
  info.machine_id = read_first_line("/etc/machine-id");
  utsname uts{};
  if (uname(&uts) == 0) info.kernel_release = uts.release;
  timespec boot{};
  timespec real{};
  clock_gettime(CLOCK_BOOTTIME, &boot);
  clock_gettime(CLOCK_REALTIME, &real);
  info.boot_wall_offset_ns = (static_cast<int64_t>(real.tv_sec) - boot.tv_sec) * 1'000'000'000LL +
                             (real.tv_nsec - boot.tv_nsec);
  info.run_id = std::to_string(static_cast<int64_t>(real.tv_sec) * 1000 + real.tv_nsec / 1'000'000);
  return info;
}

}  // namespace palisade::ocsf

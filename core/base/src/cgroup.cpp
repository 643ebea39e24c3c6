#include "palisade/base/cgroup.h"

#include <sys/stat.h>

#include <fstream>
#include <istream>
#include <mutex>

namespace palisade::base {

std::string cgroup2_mount_in(const std::vector<MountEntry>& mounts) {
  for (const MountEntry& mount : mounts) {
    if (mount.fstype == "cgroup2") return mount.mount_point;
  }
  return {};
}

std::string cgroup2_mount() {
  static std::mutex mutex;
  static std::string mount;
  std::lock_guard lock(mutex);
  if (mount.empty()) mount = cgroup2_mount_in(read_mountinfo());
  return mount;
}

std::string parse_cgroup_v2_path(std::istream& proc_cgroup) {
  std::string line;
  while (std::getline(proc_cgroup, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return {};
}

std::string cgroup_v2_path_of(uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cgroup");
  return parse_cgroup_v2_path(in);
}

uint64_t cgroup_id_of_path(const std::string& path) {
  if (path.empty()) return 0;
  const std::string mount = cgroup2_mount();
  if (mount.empty()) return 0;
  struct stat st {};
  if (stat((mount + path).c_str(), &st) != 0) return 0;
  return st.st_ino;
}

uint64_t cgroup_id_of_process(uint32_t pid) {
  return cgroup_id_of_path(cgroup_v2_path_of(pid));
}

std::vector<uint64_t> cgroup_ancestry_of_process(uint32_t pid, size_t depth) {
  return cgroup_ancestry_of_path(cgroup_v2_path_of(pid), depth);
}

std::vector<uint64_t> cgroup_ancestry_of_path(std::string path, size_t depth) {
  std::vector<uint64_t> ids;
  while (!path.empty() && ids.size() < depth) {
    if (const uint64_t id = cgroup_id_of_path(path); id != 0) ids.push_back(id);
    if (path == "/") break;
    const size_t slash = path.rfind('/');
    path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
  }
  return ids;
}

}  // namespace palisade::base

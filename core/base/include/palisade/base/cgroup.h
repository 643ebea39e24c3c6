// cgroup v2 paths and ids: where the hierarchy is mounted, a process's cgroup, and the id the
// kernel reports for a cgroup (the inode of its directory, as bpf_get_current_cgroup_id()).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "palisade/base/mountinfo.h"

namespace palisade::base {

// The first cgroup2 mount of a mount table; empty when there is none.
std::string cgroup2_mount_in(const std::vector<MountEntry>& mounts);

// Where this process sees the cgroup v2 hierarchy: /sys/fs/cgroup on pure v2 hosts,
// /sys/fs/cgroup/unified on hybrid ones; empty when it is not mounted. Cached once found (the
// mount does not move while the agent runs, and mountinfo of a busy host is long); looked up
// again while missing, so a later mount is noticed.
std::string cgroup2_mount();

// The path of the "0::" line of /proc/<pid>/cgroup text; empty when there is none.
std::string parse_cgroup_v2_path(std::istream& proc_cgroup);
// A process's cgroup v2 path ("/system.slice/x.service"); empty when it is gone.
std::string cgroup_v2_path_of(uint32_t pid);

// The id of a cgroup v2 path; 0 when it does not exist (or there is no cgroup2 mount).
uint64_t cgroup_id_of_path(const std::string& path);
// The id of a process's cgroup; 0 when it is gone.
uint64_t cgroup_id_of_process(uint32_t pid);
// The ids of a cgroup v2 path and of its ancestors up to the root, nearest first, at most
// `depth`; empty for an empty path.
std::vector<uint64_t> cgroup_ancestry_of_path(std::string path, size_t depth = 16);
// The same for a process's cgroup; empty when it is gone.
std::vector<uint64_t> cgroup_ancestry_of_process(uint32_t pid, size_t depth = 16);

}  // namespace palisade::base

#include "enforce/pinned_maps.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>

#include "enforce/enforce_abi.h"
#include "enforce/kernel_rules.h"
#include "enforce/warden_link.h"
#include "palisade/agent/enforcer.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/error.h"

namespace palisade::agent {

namespace fs = std::filesystem;

std::string pin_directory(const std::string& pin_root) {
  return pin_root + "/enforce-v" + std::to_string(PAL_ENFORCE_ABI);
}

// bpffs must be mounted for anything to be pinned; production agents mount it themselves.
void ensure_bpffs(const std::string& pin_root) {
  const fs::path mount_point = fs::path(pin_root).parent_path();
  struct statfs st {};
  if (statfs(mount_point.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC) return;
  if (mount("bpf", mount_point.c_str(), "bpf", 0, "mode=0700") != 0) {
    throw std::runtime_error("bpffs is not mounted at " + mount_point.string() +
                             " and mounting it failed (" + base::errno_text(errno) +
                             "): enforcement could not survive the agent");
  }
}

// ---- used by the CLI, without an agent

std::string exec_warden_label(const std::string& pin_dir) {
  return "exec:" + pin_dir;
}

std::string read_only_warden_label(const std::string& pin_dir) {
  return "read-only:" + pin_dir;
}

std::vector<std::string> uninstall_enforcement(const std::string& pin_root) {
  std::vector<std::string> removed;
  const std::string dir = pin_directory(pin_root);
  // Wardens an agent that died failing closed left keep refusing its locked workloads' execs.
  end_orphaned_wardens(exec_warden_label(dir));
  end_orphaned_wardens(read_only_warden_label(dir));
  std::error_code ec;
  if (!fs::exists(dir, ec)) return removed;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    // Unpinning drops the last reference: links detach, maps are freed.
    if (unlink(entry.path().c_str()) != 0) {
      throw std::runtime_error("cannot remove " + entry.path().string() + ": " +
                               base::errno_text(errno));
    }
    removed.push_back(entry.path().string());
  }
  rmdir(dir.c_str());
  rmdir(pin_root.c_str());
  return removed;
}

void set_isolation(const std::string& pin_root, uint64_t cgroup_id, bool isolated) {
  const std::string path = pin_directory(pin_root) + "/pal_workloads";
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    throw EnvironmentError("the enforcement programs are not installed (" + path + ": " +
                           base::errno_text(errno) + "): start the agent first");
  }
  pal_workload value{kUnboundSlot, 0};
  const bool known = bpf_map_lookup_elem(fd, &cgroup_id, &value) == 0;
  int err = 0;
  if (isolated) {
    value.flags |= PAL_WL_ISOLATED;
    err = bpf_map_update_elem(fd, &cgroup_id, &value, BPF_ANY);
  } else if (known) {
    // An unbound entry stays as a known marker (no flags): deleting it could put an identified
    // container under the unidentified posture; the agent prunes it when it is not identified.
    value.flags &= ~static_cast<uint32_t>(PAL_WL_ISOLATED);
    err = bpf_map_update_elem(fd, &cgroup_id, &value, BPF_ANY);
  }
  close(fd);
  if (err != 0) throw EnvironmentError("cannot update " + path + ": " + base::errno_text(err));
}

}  // namespace palisade::agent

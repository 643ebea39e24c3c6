// Which cgroups each workload policy holds: by cgroup path glob, or by container and Kubernetes
// selectors over the containers the registry knows.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "enforce/kernel_rules.h"
#include "palisade/agent/enforcer.h"
#include "palisade/base/cgroup.h"

namespace palisade::agent {

namespace fs = std::filesystem;

bool enforceable(const policies::WorkloadPolicy& policy) {
  const bool by_cgroup = !policy.cgroups.empty();
  const bool by_container = policies::has_container_selectors(policy);
  const bool exec = policy.has_process && policy.process_mode == policies::Mode::kEnforce;
  const bool files =
      policy.files_mode == policies::Mode::kEnforce && !policy.files.read_only.empty();
  return (by_cgroup || by_container) && (network_enforceable(policy) || exec || files);
}

std::vector<CgroupEntry> scan_cgroups(size_t limit) {
  std::vector<CgroupEntry> out;
  const fs::path root = base::cgroup2_mount();
  std::error_code ec;
  struct stat st {};
  if (stat(root.c_str(), &st) == 0) out.push_back({"/", st.st_ino});
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator() && out.size() < limit; it.increment(ec)) {
    if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
    if (stat(it->path().c_str(), &st) != 0) continue;
    out.push_back({"/" + fs::relative(it->path(), root, ec).string(), st.st_ino});
  }
  return out;
}

namespace {

// A container matches when every container and Kubernetes selector the policy gives matches.
bool selects_container(const policies::WorkloadPolicy& policy, const ContainerView& c) {
  return policies::has_container_selectors(policy) && policies::container_matches(policy, c);
}

std::string describe_container(const ContainerView& c) {
  std::string out = "container " + c.name;
  if (!c.pod_name.empty()) out += " (pod " + c.pod_namespace + "/" + c.pod_name + ")";
  return out;
}

}  // namespace

std::vector<WorkloadBinding> bind_workloads(const policies::PolicySet& set,
                                            const std::vector<ContainerRef>& containers,
                                            const std::vector<CgroupEntry>& cgroups) {
  std::vector<WorkloadBinding> out;
  std::set<uint64_t> bound;
  for (const auto& policy : set.workload_policies()) {
    if (!enforceable(*policy)) continue;
    if (!policy->cgroups.empty()) {
      for (const auto& cg : cgroups) {
        if (bound.count(cg.id) != 0) continue;
        const bool match = std::any_of(
            policy->cgroups.begin(), policy->cgroups.end(),
            [&](const std::string& g) { return policies::path_glob_matches(g, cg.path); });
        if (!match) continue;
        bound.insert(cg.id);
        out.push_back({cg.id, cg.path, "cgroup " + cg.path, policy.get(), 0, ""});
      }
      continue;
    }
    for (const auto& c : containers) {
      if (c->sandbox || c->cgroup_id == 0 || bound.count(c->cgroup_id) != 0) continue;
      if (!selects_container(*policy, *c)) continue;
      bound.insert(c->cgroup_id);
      out.push_back({c->cgroup_id, c->cgroup_path, describe_container(*c), policy.get(),
                     c->init_pid,
                     "/run/containerd/io.containerd.runtime.v2.task/" + c->runtime_namespace + "/" +
                         c->id + "/rootfs"});
    }
  }
  return out;
}

}  // namespace palisade::agent

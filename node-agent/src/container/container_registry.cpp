#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>

#include "palisade/agent/container.h"
#include "palisade/base/cgroup.h"
#include "palisade/base/proc.h"
#include "palisade/model/event.h"

namespace palisade::agent {
namespace {

// The initial pid namespace always has this inode number (PROC_PID_INIT_INO); reading
// /proc/1/ns/pid instead can be refused (an init that is not dumpable).
constexpr uint32_t kInitPidNamespace = 0xEFFFFFFCU;

bool is_hex_id(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

void ContainerRegistry::unindex(const ContainerView& view) {
  auto drop = [&](auto& map, const auto& key) {
    auto it = map.find(key);
    if (it != map.end() && it->second->id == view.id) map.erase(it);
  };
  if (view.cgroup_id != 0) drop(by_cgroup_, view.cgroup_id);
  if (view.pid_ns != 0) drop(by_pid_ns_, view.pid_ns);
  if (view.pid_ns != 0) {
    auto members = pid_ns_members_.find(view.pid_ns);
    if (members != pid_ns_members_.end()) {
      members->second.erase(view.id);
      if (members->second.empty()) pid_ns_members_.erase(members);
    }
  }
}

ContainerRef ContainerRegistry::with_identity(const ContainerRef& view) const {
  auto it = pods_.find(view->pod_uid);
  if (view->pod_uid.empty() || it == pods_.end()) return view;
  auto copy = std::make_shared<ContainerView>(*view);
  if (!it->second.labels.empty()) copy->pod_labels = it->second.labels;
  copy->service_account = it->second.service_account;
  copy->workload_kind = it->second.workload_kind;
  copy->workload_name = it->second.workload_name;
  return copy;
}

void ContainerRegistry::index(ContainerRef view) {
  if (view->cgroup_id != 0) by_cgroup_[view->cgroup_id] = view;
  // Sandbox (pause) containers share the pod's pid namespace only with shareProcessNamespace;
  // the app container's own namespace is the better key, so a sandbox never overrides it.
  if (view->pid_ns != 0 && !view->sandbox) pid_ns_members_[view->pid_ns].insert(view->id);
  if (view->pid_ns != 0 && (!view->sandbox || by_pid_ns_.count(view->pid_ns) == 0)) {
    by_pid_ns_[view->pid_ns] = view;
  }
  by_id_[view->id] = std::move(view);
  generation_++;
}

void ContainerRegistry::upsert(const ContainerRef& view) {
  std::unique_lock lock(mutex_);
  auto it = by_id_.find(view->id);
  if (it != by_id_.end()) {
    unindex(*it->second);
  } else if (by_id_.size() >= max_) {
    stats_.rejected_full++;
    return;
  } else {
    stats_.added++;
  }
  index(with_identity(view));
}

void ContainerRegistry::set_pod_identity(const std::string& pod_uid, PodIdentity identity) {
  std::unique_lock lock(mutex_);
  if (pods_.count(pod_uid) == 0 && pods_.size() >= max_) {
    // Full: forget the pods none of whose containers are known any more (deleted long ago).
    std::erase_if(pods_, [&](const auto& kv) {
      return std::none_of(by_id_.begin(), by_id_.end(),
                          [&](const auto& c) { return c.second->pod_uid == kv.first; });
    });
    if (pods_.size() >= max_) return;
  }
  pods_[pod_uid] = std::move(identity);
  std::vector<ContainerRef> affected;
  for (const auto& [id, view] : by_id_) {
    if (view->pod_uid == pod_uid) affected.push_back(view);
  }
  for (const auto& view : affected) {
    unindex(*view);
    index(with_identity(view));
  }
}

void ContainerRegistry::forget_pod(const std::string& pod_uid) {
  std::unique_lock lock(mutex_);
  pods_.erase(pod_uid);
}

void ContainerRegistry::remove(const std::string& id) {
  std::unique_lock lock(mutex_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  unindex(*it->second);
  by_id_.erase(it);
  stats_.removed++;
  generation_++;
}

void ContainerRegistry::retain_only(const std::vector<std::string>& ids) {
  const std::set<std::string> keep(ids.begin(), ids.end());
  std::vector<std::string> gone;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [id, view] : by_id_) {
      if (keep.count(id) == 0) gone.push_back(id);
    }
  }
  for (const auto& id : gone) remove(id);
}

ContainerRef ContainerRegistry::by_id(const std::string& id) const {
  std::shared_lock lock(mutex_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

ContainerRef ContainerRegistry::by_cgroup(uint64_t cgroup_id) const {
  std::shared_lock lock(mutex_);
  auto it = by_cgroup_.find(cgroup_id);
  return it == by_cgroup_.end() ? nullptr : it->second;
}

ContainerRef ContainerRegistry::by_pid_ns(uint32_t pid_ns) const {
  std::shared_lock lock(mutex_);
  if (auto members = pid_ns_members_.find(pid_ns);
      members != pid_ns_members_.end() && members->second.size() > 1) {
    return nullptr;
  }
  auto it = by_pid_ns_.find(pid_ns);
  return it == by_pid_ns_.end() ? nullptr : it->second;
}

ContainerRef ContainerRegistry::adopt_cgroup(uint64_t cgroup_id) {
  std::vector<ContainerRef> candidates;
  {
    std::shared_lock lock(mutex_);
    for (const auto& [id, view] : by_id_) {
      if (view->cgroup_id == 0 && !view->cgroup_path.empty()) candidates.push_back(view);
    }
  }
  for (const auto& view : candidates) {
    if (base::cgroup_id_of_path(view->cgroup_path) != cgroup_id) continue;
    auto copy = std::make_shared<ContainerView>(*view);
    copy->cgroup_id = cgroup_id;
    upsert(copy);
    return copy;
  }
  return nullptr;
}

ContainerRef ContainerRegistry::sandbox_of(const std::string& pod_uid) const {
  if (pod_uid.empty()) return nullptr;
  std::shared_lock lock(mutex_);
  for (const auto& [id, view] : by_id_) {
    if (view->sandbox && view->pod_uid == pod_uid) return view;
  }
  return nullptr;
}

std::vector<ContainerRef> ContainerRegistry::all() const {
  std::shared_lock lock(mutex_);
  std::vector<ContainerRef> out;
  out.reserve(by_id_.size());
  for (const auto& [id, view] : by_id_) out.push_back(view);
  return out;
}

ContainerRegistryStats ContainerRegistry::stats() const {
  std::shared_lock lock(mutex_);
  ContainerRegistryStats s = stats_;
  s.containers = by_id_.size();
  return s;
}

uint64_t ContainerRegistry::generation() const {
  std::shared_lock lock(mutex_);
  return generation_;
}

std::vector<std::string> runtime_namespaces(const std::string& configured) {
  return {configured, "default", "moby"};
}

std::string container_id_from_cgroup_path(const std::string& path,
                                          const std::vector<std::string>& runtime_namespaces) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos || slash + 1 >= path.size()) return {};
  std::string last = path.substr(slash + 1);
  // systemd driver: cri-containerd-<id>.scope
  static constexpr std::string_view kScopePrefix = "cri-containerd-";
  static constexpr std::string_view kScopeSuffix = ".scope";
  if (last.rfind(kScopePrefix, 0) == 0 && last.size() > kScopePrefix.size() + kScopeSuffix.size() &&
      last.compare(last.size() - kScopeSuffix.size(), kScopeSuffix.size(), kScopeSuffix) == 0) {
    return last.substr(kScopePrefix.size(),
                       last.size() - kScopePrefix.size() - kScopeSuffix.size());
  }
  // cgroupfs driver: /kubepods/<qos>/pod<uid>/<id>
  if (path.find("/kubepods") != std::string::npos && is_hex_id(last)) return last;
  // containerd's default: /<namespace>/<id>
  const auto parent_start = path.rfind('/', slash - 1);
  if (slash == 0 || parent_start == std::string::npos) return {};
  const std::string parent = path.substr(parent_start + 1, slash - parent_start - 1);
  if (std::find(runtime_namespaces.begin(), runtime_namespaces.end(), parent) !=
      runtime_namespaces.end()) {
    return last;
  }
  return {};
}

uint32_t pid_ns_of(uint32_t pid) {
  return static_cast<uint32_t>(base::namespace_inode(pid, "pid"));
}

namespace {

bool within(const std::string& path, const std::string& root) {
  if (root.empty()) return false;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

}  // namespace

ContainerResolver::ContainerResolver(std::shared_ptr<ContainerRegistry> registry,
                                     std::vector<std::string> runtime_namespaces,
                                     size_t cache_entries)
    : registry_(std::move(registry)),
      runtime_namespaces_(std::move(runtime_namespaces)),
      host_pid_ns_(kInitPidNamespace),
      paths_(cache_entries),
      fetched_(cache_entries),
      adopt_tried_(cache_entries) {}

std::optional<ContainerResolver::CgroupAnswer> ContainerResolver::container_id_for_cgroup(
    uint64_t cgroup_id, uint32_t pid) {
  if (const CgroupAnswer* known = paths_.find(cgroup_id)) return *known;
  CgroupAnswer answer;
  answer.path = base::cgroup_v2_path_of(pid);
  if (answer.path.empty()) return std::nullopt;  // the process is gone: nothing to learn
  // The process may have moved since the event (runc moves itself into the container's cgroup)
  // or its pid been reused: learn only when the path is still the event's cgroup.
  if (base::cgroup_id_of_path(answer.path) != cgroup_id) {
    return std::nullopt;
  }
  answer.container_id = container_id_from_cgroup_path(answer.path, runtime_namespaces_);
  paths_.put(cgroup_id, answer);
  return answer;
}

Attribution ContainerResolver::resolve(const TaskIdentity& task, ContainerRef& out,
                                       std::string& unresolved_id) {
  out.reset();
  unresolved_id.clear();
  if (task.cgroup_id != 0) {
    if ((out = registry_->by_cgroup(task.cgroup_id))) {
      stats_.by_cgroup++;
      return Attribution::kContainer;
    }
    // A process in a sub-cgroup of a container, or in a container the watcher has not reported
    // yet: the cgroup path says which.
    if (auto answer = container_id_for_cgroup(task.cgroup_id, task.tgid)) {
      const std::string* id = &answer->container_id;
      if (!id->empty()) {
        out = registry_->by_id(*id);
        if (!out && fetch_ && fetched_.find(*id) == nullptr) {
          fetched_.put(*id, true);
          out = fetch_(*id, task.tgid);
          if (out) stats_.fetched++;
        }
        // Only at or below the container's own cgroup: a nested cgroup named after another
        // container (made by a privileged pod) must not borrow that container's identity.
        // (Before its task starts a container has no known path yet; its id in the path is all
        // there is to go by.)
        if (out && (out->cgroup_path.empty() || within(answer->path, out->cgroup_path))) {
          stats_.by_proc++;
          return Attribution::kContainer;
        }
        out.reset();
        unresolved_id = *id;
        stats_.unresolved++;
        return Attribution::kUnresolved;
      }
      // A host cgroup: the pid namespace may still say otherwise (a runtime that does not use
      // cgroups per container); fall through.
    } else {
      // The process is gone (a short-lived one): the cgroup may still be a known container's
      // whose cgroup did not exist when it was reported. Tried again only after the registry
      // changed.
      const uint64_t generation = registry_->generation();
      const uint64_t* tried = adopt_tried_.find(task.cgroup_id);
      if (tried == nullptr || *tried != generation) {
        adopt_tried_.put(task.cgroup_id, generation);
        if ((out = registry_->adopt_cgroup(task.cgroup_id))) {
          stats_.by_cgroup++;
          return Attribution::kContainer;
        }
      }
    }
  }
  if (task.pid_ns != 0 && task.pid_ns != host_pid_ns_) {
    if ((out = registry_->by_pid_ns(task.pid_ns))) {
      stats_.by_pid_ns++;
      return Attribution::kContainer;
    }
    stats_.unresolved++;
    return Attribution::kUnresolved;
  }
  return Attribution::kHost;
}

}  // namespace palisade::agent

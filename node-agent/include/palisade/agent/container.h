// Container identity: which container (and, from the kubelet's labels, which pod) an event's
// process runs in. The registry is filled by the containerd watcher; the resolver maps a task to
// its container by cgroup id, with /proc/<pid>/cgroup and the pid namespace as fallbacks, and
// never guesses: a process in a container cgroup the agent does not know yet is "unresolved".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "palisade/base/lru_map.h"
#include "palisade/model/container_view.h"

namespace palisade {
struct TaskIdentity;
}  // namespace palisade

namespace palisade::agent {

struct ContainerRegistryStats {
  size_t containers = 0;
  uint64_t added = 0;
  uint64_t removed = 0;
  uint64_t rejected_full = 0;  // containers not tracked because the registry was full
};

// Known containers, by id, cgroup id and pid namespace. Written by the watcher thread, read by
// the pipeline thread; bounded.
class ContainerRegistry {
 public:
  explicit ContainerRegistry(size_t max_containers = 4096) : max_(max_containers) {}

  void upsert(const ContainerRef& view);
  // The pod's identity from the Kubernetes API: applied to its containers now and to those that
  // appear later. Bounded like the containers; forget_pod drops it.
  void set_pod_identity(const std::string& pod_uid, PodIdentity identity);
  void forget_pod(const std::string& pod_uid);
  void remove(const std::string& id);
  // Drops every container not in `ids` (a re-sync after reconnecting).
  void retain_only(const std::vector<std::string>& ids);

  ContainerRef by_id(const std::string& id) const;
  ContainerRef by_cgroup(uint64_t cgroup_id) const;
  ContainerRef by_pid_ns(uint32_t pid_ns) const;
  ContainerRef sandbox_of(const std::string& pod_uid) const;
  // A known container whose cgroup did not exist yet when it was reported, if that cgroup now
  // has this id: records it and returns the container.
  ContainerRef adopt_cgroup(uint64_t cgroup_id);
  std::vector<ContainerRef> all() const;
  ContainerRegistryStats stats() const;
  uint64_t generation() const;  // changes on every update: lets readers drop stale caches

 private:
  void unindex(const ContainerView& view);
  void index(ContainerRef view);
  ContainerRef with_identity(const ContainerRef& view) const;
  size_t max_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, ContainerRef> by_id_;
  std::unordered_map<uint64_t, ContainerRef> by_cgroup_;
  std::unordered_map<uint32_t, ContainerRef> by_pid_ns_;
  std::unordered_map<std::string, PodIdentity> pods_;
  // The app containers in each pid namespace: with shareProcessNamespace there are several, and
  // no single answer.
  std::unordered_map<uint32_t, std::set<std::string>> pid_ns_members_;
  ContainerRegistryStats stats_;
  uint64_t generation_ = 0;
};

// The cgroup-path parents that name a containerd namespace: the configured one, ctr's "default"
// and Docker's "moby".
std::vector<std::string> runtime_namespaces(const std::string& configured);

// Where the container id sits in a cgroup path, for the runtimes' layouts:
// /k8s.io/<id> (containerd's namespace as the parent, what ctr and cgroupfs drivers make),
// /kubepods/<qos>/pod<uid>/<64-hex id>, /kubepods.slice/.../cri-containerd-<id>.scope.
// Empty when the path is not a container's.
std::string container_id_from_cgroup_path(const std::string& path,
                                          const std::vector<std::string>& runtime_namespaces);

// The pid-namespace inode of a process; 0 when gone.
uint32_t pid_ns_of(uint32_t pid);

struct ResolverStats {
  uint64_t by_cgroup = 0;
  uint64_t by_proc = 0;  // found through /proc/<pid>/cgroup
  uint64_t by_pid_ns = 0;
  uint64_t fetched = 0;     // asked the runtime about a container it had not reported yet
  uint64_t unresolved = 0;  // in a container the agent does not know (yet)
  size_t cache_entries = 0;
};

enum class Attribution : uint8_t { kHost, kContainer, kUnresolved };

class ContainerResolver {
 public:
  // Asks the runtime about a container id seen in a cgroup path but not known yet (the process
  // that made the event, for its task identity); null when the runtime does not know it either.
  using Fetch = std::function<ContainerRef(const std::string& id, uint32_t pid)>;

  ContainerResolver(std::shared_ptr<ContainerRegistry> registry,
                    std::vector<std::string> runtime_namespaces, size_t cache_entries = 4096);

  // A new container's first events usually arrive before the runtime's notice of it: rather
  // than report them unresolved, the resolver asks (once per id; misses are remembered).
  void set_fetch(Fetch fetch) { fetch_ = std::move(fetch); }

  // Pipeline thread only.
  Attribution resolve(const TaskIdentity& task, ContainerRef& out, std::string& unresolved_id);
  ResolverStats stats() const {
    ResolverStats s = stats_;
    s.cache_entries = paths_.size();
    return s;
  }

 private:
  // The container id in the cgroup's path ("" for a host cgroup); nullopt when the process is
  // gone and the cgroup was not seen before.
  struct CgroupAnswer {
    std::string container_id;  // "" for a host cgroup
    std::string path;
  };
  // What the cgroup's path says; nullopt when the process is gone or has moved and the cgroup
  // was not seen before.
  std::optional<CgroupAnswer> container_id_for_cgroup(uint64_t cgroup_id, uint32_t pid);

  std::shared_ptr<ContainerRegistry> registry_;
  std::vector<std::string> runtime_namespaces_;
  uint32_t host_pid_ns_;
  base::LruMap<uint64_t, CgroupAnswer> paths_;  // by cgroup id
  Fetch fetch_;
  base::LruMap<std::string, bool> fetched_;  // ids already asked about
  // cgroup id -> registry generation when last tried
  base::LruMap<uint64_t, uint64_t> adopt_tried_;
  ResolverStats stats_;
};

}  // namespace palisade::agent

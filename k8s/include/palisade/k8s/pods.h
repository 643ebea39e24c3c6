#pragma once
// The pods of this node, kept current by a watch, looked up by pod uid, container id and pod IP
// so the agent can attribute an event to its pod and workload.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "palisade/k8s/reflector.h"

namespace palisade::k8s {

struct ContainerInfo {
  std::string name;
  std::string id;  // runtime prefix ("containerd://") stripped
  std::string image;
  std::string image_id;
};

struct WorkloadRef {
  std::string kind;  // Deployment, CronJob, StatefulSet, DaemonSet, ReplicaSet, Job, Pod, ...
  std::string name;
};

struct PodInfo {
  std::string uid;
  std::string name;
  std::string namespace_name;
  std::string node_name;
  std::string service_account;
  std::string phase;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;  // bounded: see PodLimits
  std::vector<std::string> pod_ips;
  bool host_network = false;
  std::vector<ContainerInfo> containers;  // init, regular and ephemeral containers
  WorkloadRef controller;  // the controlling owner reference (the pod itself when none)
  WorkloadRef workload;    // the top-level controller: ReplicaSet -> Deployment, Job -> CronJob
  bool deleted = false;    // kept briefly so late events of a deleted pod still attribute
};

struct PodLimits {
  std::size_t max_labels = 64;
  std::size_t max_annotations = 32;
  std::size_t max_annotation_bytes = 512;  // longer values are truncated
};

// Builds a PodInfo from a core/v1 Pod; workload is set to the controller (resolved later).
PodInfo pod_info_from_json(const nlohmann::json& pod, const PodLimits& limits = {});

enum class PodChange { kAdded, kUpdated, kDeleted, kEvicted };

struct PodCacheStats {
  std::size_t pods = 0;     // live pods
  std::size_t deleted = 0;  // deleted pods still kept
  std::uint64_t evicted_deleted = 0;
  std::uint64_t evicted_live = 0;  // only when the cache is full of live pods
};

// Thread-safe and bounded. When full, the oldest deleted pod goes first; a live pod is evicted
// (and counted) only when no deleted pod is left.
class PodCache {
 public:
  using Listener = std::function<void(PodChange, const PodInfo&)>;
  explicit PodCache(std::size_t max_pods = 1024);

  void upsert(PodInfo pod);
  void mark_deleted(const std::string& uid);
  std::shared_ptr<const PodInfo> by_uid(const std::string& uid) const;
  std::shared_ptr<const PodInfo> by_container_id(const std::string& container_id) const;
  std::shared_ptr<const PodInfo> by_ip(const std::string& ip) const;  // live pods only
  std::vector<std::shared_ptr<const PodInfo>> snapshot() const;
  PodCacheStats stats() const;
  // Called after each change, outside the cache lock, from the watcher's thread.
  void set_listener(Listener listener);

 private:
  using Ptr = std::shared_ptr<const PodInfo>;
  void index(const Ptr& pod);
  void unindex(const PodInfo& pod, bool keep_container_ids);
  std::optional<Ptr> evict_one();

  const std::size_t max_pods_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Ptr> by_uid_;
  std::unordered_map<std::string, std::string> by_container_;  // container id -> uid
  std::unordered_map<std::string, std::string> by_ip_;         // pod IP -> uid
  std::deque<std::string> deleted_order_;                      // uids, oldest deletion first
  std::deque<std::string> live_order_;                         // uids, oldest insertion first
  PodCacheStats stats_;
  std::shared_ptr<Listener> listener_;
};

struct PodWatcherOptions {
  std::string node_name;  // empty: NODE_NAME from the environment, else the host name
  std::chrono::seconds watch_timeout{300};
  std::chrono::milliseconds backoff_min{500};
  std::chrono::milliseconds backoff_max{30'000};
  std::size_t max_owner_cache = 2048;  // ReplicaSet/Job -> top-level controller answers
  PodLimits limits;
};

struct OwnerCacheStats {
  std::uint64_t lookups = 0;  // GETs of ReplicaSets and Jobs
  std::uint64_t hits = 0;
  std::uint64_t failures = 0;  // GET failed: the immediate controller is used instead
  std::uint64_t evictions = 0;
};

// Watches /api/v1/pods?fieldSelector=spec.nodeName=<node> into a PodCache.
class PodWatcher : private ReflectorSink {
 public:
  PodWatcher(Client& client, PodCache& cache, PodWatcherOptions options = {});
  ~PodWatcher() override;
  void start();
  void stop();
  bool wait_for_sync(std::chrono::milliseconds timeout) const;
  ReflectorStats stats() const;
  OwnerCacheStats owner_stats() const;
  const std::string& node_name() const { return node_name_; }

  // NODE_NAME, else the host name.
  static std::string default_node_name();

 private:
  void upsert(const nlohmann::json& object) override;
  void remove(const ObjectRef& ref) override;
  WorkloadRef resolve(const std::string& ns, const WorkloadRef& controller);

  Client& client_;
  PodCache& cache_;
  const PodWatcherOptions options_;
  const std::string node_name_;
  mutable std::mutex owners_mu_;
  std::unordered_map<std::string, WorkloadRef> owners_;  // "ns/Kind/name" -> top-level
  std::deque<std::string> owners_order_;
  OwnerCacheStats owner_stats_;
  Reflector reflector_;
};

}  // namespace palisade::k8s

#include <limits.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>

#include "palisade/k8s/pods.h"

namespace palisade::k8s {

namespace {

ReflectorOptions pod_reflector_options(const PodWatcherOptions& o, const std::string& node) {
  ReflectorOptions r;
  r.path = "/api/v1/pods";
  r.field_selector = "spec.nodeName=" + node;
  r.watch_timeout = o.watch_timeout;
  r.backoff_min = o.backoff_min;
  r.backoff_max = o.backoff_max;
  return r;
}

// Where the object that owns a pod's controller lives, for the two kinds that have one.
std::string owner_lookup_path(const std::string& ns, const WorkloadRef& controller) {
  if (controller.kind == "ReplicaSet") {
    return "/apis/apps/v1/namespaces/" + ns + "/replicasets/" + controller.name;
  }
  if (controller.kind == "Job")
    return "/apis/batch/v1/namespaces/" + ns + "/jobs/" + controller.name;
  return {};
}

}  // namespace

std::string PodWatcher::default_node_name() {
  if (const char* env = std::getenv("NODE_NAME"); env != nullptr && *env != '\0') return env;
  char host[HOST_NAME_MAX + 1] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) return {};
  return host;
}

PodWatcher::PodWatcher(Client& client, PodCache& cache, PodWatcherOptions options)
    : client_(client),
      cache_(cache),
      options_(std::move(options)),
      node_name_(options_.node_name.empty() ? default_node_name() : options_.node_name),
      reflector_(client, pod_reflector_options(options_, node_name_), *this) {}

PodWatcher::~PodWatcher() {
  stop();
}

void PodWatcher::start() {
  reflector_.start();
}
void PodWatcher::stop() {
  reflector_.stop();
}
bool PodWatcher::wait_for_sync(std::chrono::milliseconds timeout) const {
  return reflector_.wait_for_sync(timeout);
}
ReflectorStats PodWatcher::stats() const {
  return reflector_.stats();
}

OwnerCacheStats PodWatcher::owner_stats() const {
  std::lock_guard lock(owners_mu_);
  return owner_stats_;
}

void PodWatcher::upsert(const nlohmann::json& object) {
  PodInfo pod = pod_info_from_json(object, options_.limits);
  pod.workload = resolve(pod.namespace_name, pod.controller);
  cache_.upsert(std::move(pod));
}

void PodWatcher::remove(const ObjectRef& ref) {
  cache_.mark_deleted(ref.uid);
}

// ReplicaSet -> Deployment and Job -> CronJob by reading the controller's own controller.
// Answers are cached (they never change for a given name) and bounded; a failed lookup falls
// back to the immediate controller and is retried for the next pod.
WorkloadRef PodWatcher::resolve(const std::string& ns, const WorkloadRef& controller) {
  const std::string path = owner_lookup_path(ns, controller);
  if (path.empty()) return controller;
  const std::string key = ns + "/" + controller.kind + "/" + controller.name;
  {
    std::lock_guard lock(owners_mu_);
    if (const auto it = owners_.find(key); it != owners_.end()) {
      ++owner_stats_.hits;
      return it->second;
    }
    ++owner_stats_.lookups;
  }
  WorkloadRef top = controller;
  try {
    const nlohmann::json owner = client_.get(path);
    const auto meta = owner.value("metadata", nlohmann::json::object());
    const auto refs = meta.value("ownerReferences", nlohmann::json::array());
    for (const auto& ref : refs) {
      if (ref.value("controller", false)) {
        top = {ref.value("kind", ""), ref.value("name", "")};
        break;
      }
    }
  } catch (const std::exception& e) {
    spdlog::warn("k8s: owner of {} {}/{}: {}", controller.kind, ns, controller.name, e.what());
    std::lock_guard lock(owners_mu_);
    ++owner_stats_.failures;
    return controller;
  }
  std::lock_guard lock(owners_mu_);
  if (owners_.size() >= options_.max_owner_cache && !owners_order_.empty()) {
    owners_.erase(owners_order_.front());
    owners_order_.pop_front();
    ++owner_stats_.evictions;
  }
  owners_.emplace(key, top);
  owners_order_.push_back(key);
  return top;
}

}  // namespace palisade::k8s

#include <algorithm>
#include <mutex>

#include "internal.h"
#include "palisade/k8s/pods.h"

namespace palisade::k8s {

namespace {

using nlohmann::json;

std::string str(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& member(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  const auto it = obj.find(key);
  return it != obj.end() ? *it : kNull;
}

// "containerd://0123ab" -> "0123ab"; the same for cri-o:// and docker://.
std::string strip_runtime(const std::string& id) {
  const auto scheme = id.find("://");
  return scheme == std::string::npos ? id : id.substr(scheme + 3);
}

std::map<std::string, std::string> string_map(const json& obj, std::size_t max_entries,
                                              std::size_t max_value_bytes) {
  std::map<std::string, std::string> out;
  if (!obj.is_object()) return out;
  for (const auto& [k, v] : obj.items()) {
    if (out.size() >= max_entries) break;
    if (!v.is_string()) continue;
    out.emplace(k, internal::truncate_utf8(v.get<std::string>(), max_value_bytes));
  }
  return out;
}

void add_containers(const json& statuses, std::vector<ContainerInfo>& out) {
  if (!statuses.is_array()) return;
  for (const json& s : statuses) {
    out.push_back(
        {str(s, "name"), strip_runtime(str(s, "containerID")), str(s, "image"), str(s, "imageID")});
  }
}

WorkloadRef controller_of(const json& meta) {
  const json& owners = member(meta, "ownerReferences");
  if (owners.is_array()) {
    for (const json& o : owners) {
      if (o.value("controller", false)) return {str(o, "kind"), str(o, "name")};
    }
  }
  return {"Pod", str(meta, "name")};
}

}  // namespace

PodInfo pod_info_from_json(const json& pod, const PodLimits& limits) {
  const json& meta = member(pod, "metadata");
  const json& spec = member(pod, "spec");
  const json& status = member(pod, "status");
  PodInfo info;
  info.uid = str(meta, "uid");
  info.name = str(meta, "name");
  info.namespace_name = str(meta, "namespace");
  info.node_name = str(spec, "nodeName");
  info.service_account = str(spec, "serviceAccountName");
  info.phase = str(status, "phase");
  info.labels = string_map(member(meta, "labels"), limits.max_labels, 63 + 253);
  // Annotations can be huge (kubectl's last-applied-configuration): bounded in count and size.
  info.annotations =
      string_map(member(meta, "annotations"), limits.max_annotations, limits.max_annotation_bytes);
  info.host_network = member(spec, "hostNetwork").is_boolean() && spec["hostNetwork"].get<bool>();
  const json& ips = member(status, "podIPs");
  if (ips.is_array()) {
    for (const json& ip : ips) {
      if (const std::string a = str(ip, "ip"); !a.empty()) info.pod_ips.push_back(a);
    }
  }
  if (info.pod_ips.empty() && !str(status, "podIP").empty()) {
    info.pod_ips.push_back(str(status, "podIP"));  // servers before dual-stack
  }
  add_containers(member(status, "initContainerStatuses"), info.containers);
  add_containers(member(status, "containerStatuses"), info.containers);
  add_containers(member(status, "ephemeralContainerStatuses"), info.containers);
  info.controller = controller_of(meta);
  info.workload = info.controller;
  return info;
}

PodCache::PodCache(std::size_t max_pods) : max_pods_(std::max<std::size_t>(max_pods, 1)) {}

void PodCache::set_listener(Listener listener) {
  std::unique_lock lock(mu_);
  listener_ = listener ? std::make_shared<Listener>(std::move(listener)) : nullptr;
}

void PodCache::index(const Ptr& pod) {
  for (const auto& c : pod->containers) {
    if (!c.id.empty()) by_container_[c.id] = pod->uid;
  }
  // A host-network pod's IP is the node's: it identifies no pod.
  if (!pod->host_network && !pod->deleted) {
    for (const auto& ip : pod->pod_ips) by_ip_[ip] = pod->uid;
  }
}

void PodCache::unindex(const PodInfo& pod, bool keep_container_ids) {
  if (!keep_container_ids) {
    for (const auto& c : pod.containers) {
      const auto it = by_container_.find(c.id);
      if (it != by_container_.end() && it->second == pod.uid) by_container_.erase(it);
    }
  }
  for (const auto& ip : pod.pod_ips) {
    const auto it = by_ip_.find(ip);
    if (it != by_ip_.end() && it->second == pod.uid) by_ip_.erase(it);
  }
}

// Called with the lock held and the cache full.
std::optional<PodCache::Ptr> PodCache::evict_one() {
  auto& order = !deleted_order_.empty() ? deleted_order_ : live_order_;
  while (!order.empty()) {
    const std::string uid = order.front();
    order.pop_front();
    const auto it = by_uid_.find(uid);
    if (it == by_uid_.end()) continue;  // stale entry: already gone
    Ptr victim = it->second;
    unindex(*victim, false);
    by_uid_.erase(it);
    if (victim->deleted) {
      ++stats_.evicted_deleted;
      --stats_.deleted;
    } else {
      ++stats_.evicted_live;
      --stats_.pods;
    }
    return victim;
  }
  return std::nullopt;
}

void PodCache::upsert(PodInfo pod) {
  pod.deleted = false;
  auto fresh = std::make_shared<const PodInfo>(std::move(pod));
  std::optional<Ptr> evicted;
  PodChange change = PodChange::kAdded;
  std::shared_ptr<Listener> listener;
  {
    std::unique_lock lock(mu_);
    const auto it = by_uid_.find(fresh->uid);
    if (it != by_uid_.end()) {
      change = PodChange::kUpdated;
      if (it->second->deleted) {  // should not happen; keep the counts right anyway
        --stats_.deleted;
        ++stats_.pods;
        std::erase(deleted_order_, fresh->uid);
        live_order_.push_back(fresh->uid);
      }
      unindex(*it->second, false);
      it->second = fresh;
    } else {
      if (by_uid_.size() >= max_pods_) evicted = evict_one();
      by_uid_.emplace(fresh->uid, fresh);
      live_order_.push_back(fresh->uid);
      ++stats_.pods;
    }
    index(fresh);
    listener = listener_;
  }
  if (listener) {
    if (evicted) (*listener)(PodChange::kEvicted, **evicted);
    (*listener)(change, *fresh);
  }
}

void PodCache::mark_deleted(const std::string& uid) {
  Ptr tombstone;
  std::shared_ptr<Listener> listener;
  {
    std::unique_lock lock(mu_);
    const auto it = by_uid_.find(uid);
    if (it == by_uid_.end() || it->second->deleted) return;
    auto copy = std::make_shared<PodInfo>(*it->second);
    copy->deleted = true;
    unindex(*it->second, true);  // container ids stay: late events of its processes
    tombstone = copy;
    it->second = tombstone;
    std::erase(live_order_, uid);
    deleted_order_.push_back(uid);
    --stats_.pods;
    ++stats_.deleted;
    // Tombstones are for late events only: at most a quarter of the cache.
    while (deleted_order_.size() > std::max<std::size_t>(max_pods_ / 4, 1)) evict_one();
    listener = listener_;
  }
  if (listener) (*listener)(PodChange::kDeleted, *tombstone);
}

std::shared_ptr<const PodInfo> PodCache::by_uid(const std::string& uid) const {
  std::shared_lock lock(mu_);
  const auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? nullptr : it->second;
}

std::shared_ptr<const PodInfo> PodCache::by_container_id(const std::string& container_id) const {
  std::shared_lock lock(mu_);
  const auto c = by_container_.find(strip_runtime(container_id));
  if (c == by_container_.end()) return nullptr;
  const auto it = by_uid_.find(c->second);
  return it == by_uid_.end() ? nullptr : it->second;
}

std::shared_ptr<const PodInfo> PodCache::by_ip(const std::string& ip) const {
  std::shared_lock lock(mu_);
  const auto c = by_ip_.find(ip);
  if (c == by_ip_.end()) return nullptr;
  const auto it = by_uid_.find(c->second);
  return it == by_uid_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const PodInfo>> PodCache::snapshot() const {
  std::shared_lock lock(mu_);
  std::vector<Ptr> out;
  out.reserve(by_uid_.size());
  for (const auto& [uid, pod] : by_uid_) out.push_back(pod);
  return out;
}

PodCacheStats PodCache::stats() const {
  std::shared_lock lock(mu_);
  return stats_;
}

}  // namespace palisade::k8s

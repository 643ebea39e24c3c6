#include "palisade/k8s/peers.h"
#include "palisade/k8s/pods.h"

namespace palisade::k8s {

void PeerDirectory::upsert(const nlohmann::json& pod) {
  const PodInfo info = pod_info_from_json(pod);
  if (info.uid.empty()) return;
  // Finished pods release their IPs (the kubelet hands them to new pods).
  if (info.phase == "Succeeded" || info.phase == "Failed") {
    dirty_ |= by_uid_.erase(info.uid) > 0;
    return;
  }
  if (by_uid_.count(info.uid) == 0 && by_uid_.size() >= max_pods_) {
    refused_++;
    return;
  }
  auto peer = std::make_shared<PeerPod>();
  peer->namespace_name = info.namespace_name;
  peer->name = info.name;
  peer->labels = info.labels;
  peer->ips = info.pod_ips;
  by_uid_[info.uid] = std::move(peer);
  dirty_ = true;
}

void PeerDirectory::remove(const ObjectRef& ref) {
  dirty_ |= by_uid_.erase(ref.uid) > 0;
}

void PeerDirectory::committed() {
  if (!dirty_) return;
  dirty_ = false;
  auto next = std::make_shared<PeerSnapshot>();
  next->generation = ++generation_;
  next->pods.reserve(by_uid_.size());
  for (const auto& [uid, pod] : by_uid_) {
    next->pods.push_back(pod);
    for (const auto& ip : pod->ips) next->by_ip[ip] = pod;
  }
  std::lock_guard lock(mutex_);
  snapshot_ = std::move(next);
}

std::shared_ptr<const PeerSnapshot> PeerDirectory::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

std::uint64_t PeerDirectory::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

}  // namespace palisade::k8s

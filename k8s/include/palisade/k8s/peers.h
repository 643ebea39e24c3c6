#pragma once
// Every pod of the cluster, by IP: what network rules that name their peers by workload
// (namespace and labels) resolve against. Fed by a Reflector on /api/v1/pods (all namespaces,
// all nodes); readers take immutable snapshots, published once per consistent point.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "palisade/k8s/reflector.h"

namespace palisade::k8s {

struct PeerPod {
  std::string namespace_name;
  std::string name;
  std::map<std::string, std::string> labels;
  std::vector<std::string> ips;  // status.podIPs, as text
};

struct PeerSnapshot {
  std::uint64_t generation = 0;  // changes with every published change
  std::unordered_map<std::string, std::shared_ptr<const PeerPod>> by_ip;
  std::vector<std::shared_ptr<const PeerPod>> pods;
};

class PeerDirectory : public ReflectorSink {
 public:
  explicit PeerDirectory(std::size_t max_pods = 65536) : max_pods_(max_pods) {}

  void upsert(const nlohmann::json& pod) override;
  void remove(const ObjectRef& ref) override;
  void committed() override;

  std::shared_ptr<const PeerSnapshot> snapshot() const;
  std::uint64_t refused() const;  // pods not kept because max_pods was reached

 private:
  std::size_t max_pods_;
  std::unordered_map<std::string, std::shared_ptr<const PeerPod>> by_uid_;  // reflector thread
  bool dirty_ = false;
  std::uint64_t generation_ = 0;
  std::uint64_t refused_ = 0;
  mutable std::mutex mutex_;  // guards snapshot_
  std::shared_ptr<const PeerSnapshot> snapshot_ = std::make_shared<PeerSnapshot>();
};

}  // namespace palisade::k8s

// A container as the events attribute it: plain data, published once and shared between
// threads. The agent's container registry (node-agent) fills these; the policy engine and the
// OCSF formatter read them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace palisade {

struct ContainerView {
  std::string id;
  std::string name;  // the kubelet's io.kubernetes.container.name, else the id
  std::string image;
  std::string runtime = "containerd";
  std::string runtime_namespace;  // containerd namespace (k8s.io for the kubelet's containers)
  std::string pod_name;           // from the kubelet's labels; empty outside Kubernetes
  std::string pod_namespace;
  std::string pod_uid;
  std::map<std::string, std::string> labels;      // containerd labels (capped)
  std::map<std::string, std::string> pod_labels;  // the pod's own labels (capped)
  // From the Kubernetes API when the agent watches it (empty otherwise).
  std::string service_account;
  std::string workload_kind;  // the top-level controller: Deployment, StatefulSet, CronJob, ...
  std::string workload_name;
  uint32_t init_pid = 0;    // host pid of the task's first process; 0 = none
  uint64_t cgroup_id = 0;   // cgroup v2 id of that process
  std::string cgroup_path;  // and its cgroup v2 path
  uint32_t pid_ns = 0;
  bool sandbox = false;  // the pod's pause container

  // The OCSF container object, rendered when the view is made: views are shared between threads
  // and never change once published, so nothing renders it lazily.
  std::string json;
};
using ContainerRef = std::shared_ptr<const ContainerView>;

// The kubelet's labels on containerd containers.
inline constexpr const char* kPodNameLabel = "io.kubernetes.pod.name";
inline constexpr const char* kPodNamespaceLabel = "io.kubernetes.pod.namespace";
inline constexpr const char* kPodUidLabel = "io.kubernetes.pod.uid";
inline constexpr const char* kContainerNameLabel = "io.kubernetes.container.name";

// What the Kubernetes API adds to a pod's containers.
struct PodIdentity {
  std::map<std::string, std::string> labels;
  std::string service_account;
  std::string workload_kind;
  std::string workload_name;
};

}  // namespace palisade

// Enforcement: what a WorkloadPolicy forbids, refused in the kernel. Workloads are cgroups: the
// binder decides which cgroups each policy covers (its `cgroups` selector, or the containers its
// container and Kubernetes selectors match), and the Enforcer writes their rules into maps that
// eBPF programs attached at the cgroup root consult on every connect, datagram, new inbound flow
// and exec. Programs, links and maps are pinned under bpffs: they outlive the agent, a restarted
// agent adopts them, and `palisade agent --uninstall` removes them (docs/enforcement.md).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "palisade/agent/container.h"
#include "palisade/agent/pipeline.h"
#include "palisade/agent/source.h"
#include "palisade/policies/policy_set.h"

namespace palisade::agent {

struct EnforcerOptions {
  std::string pin_root = "/sys/fs/bpf/palisade";  // on bpffs (mounted when missing)
  // auto: the strongest that works here: lsm, then fanotify, then kill. Or one of those by name.
  std::string exec_mechanism = "auto";
  uint32_t fanotify_timeout_ms = 250;  // a stalled decision is answered with the default
  bool fanotify_fail_closed = false;   // that default: allow (open) or deny (closed)
  std::vector<std::string> fanotify_mounts = {"/"};  // filesystems whose execs are checked
  // Cgroup paths (relative to the cgroup2 mount) under which a cgroup the agent has not
  // identified yet gets `unidentified_posture` until its container is known: allow, audit,
  // deny-network or deny (network and exec).
  std::vector<std::string> guarded_parents;
  std::string unidentified_posture = "allow";
};

// One active mechanism, as `palisade agent status` shows it.
struct MechanismStatus {
  std::string name;    // e.g. "exec: fanotify FAN_OPEN_EXEC_PERM"
  std::string state;   // active, standby, unavailable
  std::string detail;  // why, when not active
};

// A canary check: a throwaway cgroup under a deny-everything rule, where a connect and an exec
// must fail. Policies that silently enforce nothing are the worst failure of this kind of tool.
struct CanaryCheck {
  bool passed = false;
  std::string detail;
};
struct CanaryResult {
  int64_t time_ms = 0;
  CanaryCheck network;
  CanaryCheck exec;
  bool passed() const { return network.passed && exec.passed; }
  nlohmann::json to_json() const;
};

// One policy's hold on one cgroup.
struct WorkloadBinding {
  uint64_t cgroup_id = 0;
  std::string cgroup_path;  // relative to the cgroup2 mount
  std::string workload;     // what it is: "container NAME (pod NS/NAME)" or "cgroup PATH"
  const policies::WorkloadPolicy* policy = nullptr;
  uint32_t root_pid = 0;  // a process of the container, whose root the allowlist's paths are in
  std::string rootfs;     // the container's root filesystem as this host sees it ("" = host)
};

// A cgroup v2 directory: its path relative to the mount and its id (the directory's inode).
struct CgroupEntry {
  std::string path;
  uint64_t id = 0;
};

// Walks the cgroup2 hierarchy (bounded: at most `limit` cgroups).
std::vector<CgroupEntry> scan_cgroups(size_t limit = 65536);

// Which cgroups each policy covers. A cgroup is bound to the first policy (in load order) that
// selects it and has something to enforce (network rules, or an exec allowlist in enforce mode).
std::vector<WorkloadBinding> bind_workloads(const policies::PolicySet& set,
                                            const std::vector<ContainerRef>& containers,
                                            const std::vector<CgroupEntry>& cgroups);

// Whether a policy's selector can be bound to cgroups at all (host `processes`-only policies
// cannot: they are judged by the detector and not enforced in the kernel).
bool enforceable(const policies::WorkloadPolicy& policy);

// The current addresses of the pods a network rule names by workload.
struct PeerAddress {
  uint16_t family = 0;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr{};
  bool operator<(const PeerAddress& o) const {
    return family != o.family ? family < o.family : addr < o.addr;
  }
};
using PeerResolver = std::function<std::vector<PeerAddress>(const policies::PeerSelector&)>;

class Enforcer : public CgroupNames {
 public:
  // Loads the programs, or adopts the ones a previous agent pinned. Throws std::runtime_error
  // naming what is missing when eBPF cgroup programs cannot be used at all.
  static std::unique_ptr<Enforcer> start(const EnforcerOptions& options);
  ~Enforcer() override;

  // Makes the kernel maps say exactly what `bindings` say; cgroups no longer bound are released
  // (an isolation set by a response stays). The set must outlive the next apply().
  // `identified` are the cgroups whose workload is known (containers the registry attributed):
  // they leave the unidentified posture even when no policy binds them.
  void apply(std::shared_ptr<const policies::PolicySet> set,
             const std::vector<WorkloadBinding>& bindings,
             const std::vector<uint64_t>& identified = {});
  // An adopting agent keeps the pinned bindings of workloads it has not seen yet; once containerd
  // (and the Kubernetes API) have synced, apply() may release what is no longer bound.
  void sources_synced();

  // Where rules that name peers by workload get their addresses (the Kubernetes API's pods);
  // without one such rules match nothing. Takes effect at the next apply().
  void set_peer_resolver(PeerResolver resolver);

  // Hands every denial the kernel (or the exec guard) reported to `deliver`, as records.
  void poll(const RecordCallback& deliver);

  // Runs the canary checks of every active mechanism now (a few milliseconds; forks one child).
  CanaryResult run_canary();

  const std::string* path_of(uint64_t cgroup_id) const override;
  std::vector<MechanismStatus> mechanisms() const;
  bool adopted() const;   // the programs and maps were already pinned by a previous agent
  uint64_t lost() const;  // denial records the kernel could not queue
  nlohmann::json status() const;

  struct Impl;

 private:
  explicit Enforcer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Removes every pinned program, link and map (the kernel detaches them once unpinned and no agent
// holds them). Returns what it removed; throws naming the path that could not be removed.
std::vector<std::string> uninstall_enforcement(const std::string& pin_root);

// Cuts a cgroup off the network (all but its policy's management rules), or lifts that, through
// the pinned maps: works with or without a running agent. Throws EnvironmentError saying why
// when the enforcement programs are not installed or the map refuses the update.
void set_isolation(const std::string& pin_root, uint64_t cgroup_id, bool isolated);

}  // namespace palisade::agent

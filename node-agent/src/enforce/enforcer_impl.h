// The enforcer's state, shared by the files that implement it (enforcer.cpp: loading, attaching
// and writing the maps; canary.cpp: the self-test). Not a public header.
#pragma once

#include <bpf/libbpf.h>

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "enforce/exec_lockdown.h"
#include "enforce/fanotify_guard.h"
#include "enforce/kernel_rules.h"
#include "enforce/write_guard.h"
#include "enforcer.skel.h"
#include "palisade/agent/enforcer.h"
#include "palisade/base/bounded_queue.h"

namespace palisade::agent {

struct Enforcer::Impl {
  EnforcerOptions options;
  std::string pin_dir;
  enforcer* skel = nullptr;
  std::vector<bpf_link*> links;
  ring_buffer* ring = nullptr;
  bool adopted = false;
  std::vector<MechanismStatus> mechanisms;
  std::string exec_mechanism;  // lsm, fanotify, kill or none
  std::unique_ptr<ExecLockdown> lockdown;
  std::unique_ptr<WriteGuard> write_guard;
  // From the write guard's thread to the agent's; refused (and counted) when full.
  base::BoundedQueue<std::vector<std::byte>> file_denials{4096, base::OnFull::kReject};

  // Written by apply() and read by poll() on the agent's thread, and by the exec guard's threads.
  mutable std::mutex mutex;
  std::shared_ptr<const policies::PolicySet> set;
  std::unordered_map<uint64_t, WorkloadBinding> bound;  // by cgroup id
  std::map<std::string, uint32_t> slot_of_policy;       // stable across reloads
  std::map<uint32_t, SlotRules> slots;
  PeerResolver peer_resolver;
  uint64_t peer_addresses = 0;
  std::map<uint64_t, std::shared_ptr<const std::set<std::string>>> interpreters;  // by cgroup
  std::vector<std::string> errors;
  uint64_t denials = 0;
  uint64_t exec_allow_entries = 0;

  uint64_t canary_cgroup = 0;  // while a canary runs
  // False while an adopting agent's container and pod sources have not synced: releasing
  // pinned bindings then would lift enforcement from workloads it simply has not seen yet.
  bool may_release = true;
  const policies::WorkloadPolicy canary_policy = make_canary_policy();
  policies::WorkloadPolicy posture_policy;
  std::vector<std::string> guard_paths;  // "/k8s.io/" (with the slash) for prefix checks
  std::set<uint64_t> identified;

  const RecordCallback* deliver = nullptr;  // valid during poll() only
  std::vector<std::byte> scratch;

  ~Impl() {
    lockdown.reset();  // before the maps it reads go
    write_guard.reset();
    if (ring != nullptr) ring_buffer__free(ring);
    for (bpf_link* link : links) {
      // The pin keeps the attachment: closing our descriptor must not detach it.
      bpf_link__disconnect(link);
      bpf_link__destroy(link);
    }
    if (skel != nullptr) enforcer__destroy(skel);
  }

  static int on_record(void* ctx, void* data, size_t size) {
    static_cast<Impl*>(ctx)->annotate_and_deliver(static_cast<const std::byte*>(data), size);
    return 0;
  }

  void annotate_and_deliver(const std::byte* data, size_t size);
  void choose_exec_mechanism();
  void attach_all();
  void write_slot(uint32_t slot, const policies::WorkloadPolicy& policy);
  void write_workloads(const std::vector<WorkloadBinding>& bindings);
  void collect_exec_allowlist(uint32_t slot, const WorkloadBinding& binding,
                              std::map<std::vector<uint8_t>, pal_exec_allowed>& out);
  void write_exec_allowlists(const std::map<std::vector<uint8_t>, pal_exec_allowed>& allow);
  void write_guards();
  void write_identified();
  void write_peer_addresses();
  void start_write_guard();
  std::optional<std::string> write_violation(const WriteRequest& request);
  void watch_read_only();
  // An unidentified cgroup under a guarded parent gets the posture (mutex held).
  std::optional<ExecLockdown::Target> posture_target(uint64_t cgroup_id, uint32_t pid) const;
  std::vector<uint64_t> locked_cgroups(const std::vector<WorkloadBinding>& accepted) const;
};

}  // namespace palisade::agent

// The decoded event: what every stage after the decoder (process table, policy, outputs, store)
// works with. One struct for all kinds keeps the pipeline allocation-light; fields that a kind does
// not use stay empty. docs/events.md lists which fields each kind fills.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "palisade/model/container_view.h"
#include "palisade/model/vm_view.h"

namespace palisade {

enum class EventKind : uint16_t {
  kUnknown = 0,
  kProcessExec = 1,
  kProcessFork = 2,
  kProcessExit = 3,
  kProcessSnapshot = 4,
  kFileOpen = 16,
  kFileUnlink = 17,
  kFileRmdir = 18,
  kFileRename = 19,
  kFileChmod = 20,
  kFileChown = 21,
  kNetConnect = 32,
  kNetAccept = 33,
  kNetBind = 34,
  kNetListen = 35,
  kPrivSetuid = 48,
  kPrivSetgid = 49,
  kPrivCapset = 50,
  kPrivPtrace = 51,
  kPrivModule = 52,
  kPrivMount = 53,
  kPrivUnshare = 54,
  kPrivSetns = 55,
  kPrivMemfd = 56,
  kPrivBpf = 57,
  kNetDeny = 64,      // enforcement: a connection, datagram or packet refused (or would be, audit)
  kExecDeny = 65,     // enforcement: an exec outside the allowlist refused or killed
  kFileDeny = 66,     // enforcement: a write-open of a read-only path refused
  kVmInventory = 80,  // hypervisor: a VM as found when a host was (re)synced or reconfigured
  kVmLifecycle = 81,  // hypervisor: defined, started, suspended, stopped, crashed, migrated...
  kVmHost = 82,       // hypervisor: a libvirt host connected, lost or restored
  kVmStats = 83,      // hypervisor: one interval's rates (CPU, network, disk, balloon)
  kVmGuestChange = 84,  // hypervisor: a guest-disk inspection found a change
  kVmInspection = 85,   // hypervisor: a guest-disk inspection completed or failed
};

// Loss accounting is per class, matching the sensor's sequence counters.
// Every kind is below this (the sensor's kinds are below its ABI's PAL_KIND_LIMIT; the hypervisor
// monitor's come after): tables indexed by kind use it.
inline constexpr size_t kEventKindLimit = 96;

// Enforcement denials are numbered by the enforcement programs, apart from the sensor's classes.
enum class EventClass : uint8_t {
  kProcess = 0,
  kFile = 1,
  kNetwork = 2,
  kPrivilege = 3,
  kEnforcement = 4,
  kVirtualMachine = 5
};
inline constexpr size_t kEventClassCount = 6;

constexpr EventClass class_of(EventKind kind) {
  return static_cast<EventClass>((static_cast<unsigned>(kind) >> 4) & 7U);
}
std::string_view kind_name(EventKind kind);

struct EventKindInfo {
  EventKind kind;
  std::string_view name;
  std::string_view source;  // where the sensor sees it
  std::string_view description;
  std::string_view carries;  // fields beyond the common ones
};
std::span<const EventKindInfo> event_kinds();
std::string_view class_name(EventClass cls);

struct TaskIdentity {
  uint32_t pid = 0;  // thread id
  uint32_t tgid = 0;
  uint32_t ppid = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t euid = 0;
  uint32_t egid = 0;
  uint32_t auid = kNoLoginUid;
  uint64_t cgroup_id = 0;
  uint32_t mnt_ns = 0;
  uint32_t pid_ns = 0;
  uint64_t start_ns = 0;  // process start, boot-based clock; with tgid a unique key
  std::string comm;

  static constexpr uint32_t kNoLoginUid = 0xffffffffU;
};

struct NetEndpoint {
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;
  std::string to_string(uint16_t family) const;  // address only
};

// Process details joined from the process table. Events share them by reference: an event for
// a deep process tree costs a few reference counts, not a copy of every ancestor's strings.
struct ProcessView {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint64_t start_ns = 0;
  uint32_t uid = 0;
  uint32_t auid = TaskIdentity::kNoLoginUid;
  std::string exe;
  std::string cmdline;
  std::string cwd;
  std::string comm;

  // The formatter's rendering of this view, made on first use and reused by every later event of
  // the process (views are immutable once shared; ProcessTable clears these when it changes one).
  // Only the pipeline thread formats, so no locking.
  mutable std::string json_members;  // "pid":..,"uid":..,...  (inside a process object)
  mutable std::string json_exe;      // the executable path as a quoted JSON string
};
using ProcessRef = std::shared_ptr<const ProcessView>;

// What an enforcement denial (kNetDeny, kExecDeny) says beyond the common fields: which hook
// refused what, and which workload policy and rule decided it.
struct EnforcementInfo {
  std::string_view hook;    // connect, sendmsg, ingress, egress, exec-kill, exec-lsm, exec-fanotify
  bool enforced = false;    // false: audit mode (or a drift alert), the action went through
  std::string_view reason;  // default-deny, deny-rule, isolated, not-allowlisted, drift
  int32_t rule = -1;        // index in the workload's kernel rule set; -1 = none
  uint32_t slot = 0;
  uint64_t dev = 0;  // exec: the file's identity
  uint64_t ino = 0;
  std::string policy;     // the WorkloadPolicy (filled by the enforcer in user space)
  std::string rule_text;  // the rule as written, when one decided
  std::string workload;   // the cgroup path or container the policy was bound to
};

struct Event {
  EventKind kind = EventKind::kUnknown;
  uint16_t cpu = 0;
  uint64_t seq = 0;
  uint64_t mono_ns = 0;
  uint64_t wall_ns = 0;  // derived from mono_ns by the pipeline's clock
  int64_t result = 0;
  TaskIdentity task;

  // Process fields (exec, snapshot): the new image. Fork: child pid in target_pid.
  std::string exe;
  std::vector<std::string> argv;
  bool argv_truncated = false;
  uint32_t stdio_sockets = 0;  // exec: bit n set when fd n (0-2) is a socket
  std::string cwd;
  std::string exec_filename;
  uint32_t target_pid = 0;
  uint64_t target_start_ns = 0;
  uint32_t exit_code = 0;  // wait(2) status

  // File fields.
  std::string path;
  std::string path2;
  uint32_t flags = 0;
  uint32_t mode = 0;
  uint32_t target_uid = 0xffffffffU;
  uint32_t target_gid = 0xffffffffU;

  // Network fields.
  uint16_t family = 0;
  uint16_t sock_type = 0;
  uint16_t protocol = 0;
  NetEndpoint local;
  NetEndpoint remote;

  // Privilege fields: raw arguments, meaning per kind (docs/events.md).
  std::array<uint64_t, 4> args{};
  uint32_t old_uid = 0;
  uint32_t old_euid = 0;
  uint32_t old_gid = 0;
  uint32_t old_egid = 0;
  std::vector<std::string> strings;  // extra strings (mount source/fstype, memfd name, ...)

  EnforcementInfo enforcement;  // kNetDeny, kExecDeny only

  // Enrichment, filled by the process table; null when unknown.
  ProcessRef process;
  ProcessRef parent;
  ProcessRef target;                // ptrace: the traced process
  std::vector<ProcessRef> lineage;  // parent first, up to init
  bool lineage_complete = false;

  // Container attribution, by the container resolver: the container, or null for a host process.
  // A process in a container the agent does not know (yet) has no container and the id its cgroup
  // path gives ("-" when only its pid namespace tells it is in one): unresolved, never guessed.
  ContainerRef container;
  std::string container_unresolved;
  // The cgroup v2 path of task.cgroup_id, relative to the cgroup2 mount, when a policy selects
  // by cgroup (filled by the pipeline from the enforcer's cgroup names; empty otherwise).
  std::string cgroup_path;

  // Virtual machine events (class kVirtualMachine): the VM and what happened to it.
  VmRef vm;
  VmActivity vm_activity;

  void clear();  // reset for reuse without giving back string capacity
};

}  // namespace palisade

// Application lockdown, mechanism 2 (the fapolicyd way): every execve of a file on a marked
// filesystem waits in the kernel until this guard writes allow or deny. Unlike the eBPF sensor it
// can stop an exec before the first instruction runs. A permission warden (warden_link.h), a
// separate small process, answers in the guard's place when the guard's process cannot (stopped,
// hung, gone), so that no exec ever waits on it for long (docs/enforcement.md).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "enforce/warden_link.h"

namespace palisade::agent {

inline constexpr uint32_t kUnknownUid = 0xFFFFFFFFU;  // the kernel's invalid uid, never root

struct ExecRequest {
  uint32_t pid = 0;           // the process doing the execve (fanotify metadata pid)
  std::string path;           // the executable's path (readlink of /proc/self/fd/<event fd>)
  uint64_t dev = 0, ino = 0;  // fstat of the event fd
  int64_t ctime_ns = 0;       // st_ctim: changes on every write, chmod, rename: a new file version
  uint64_t cgroup_id = 0;  // cgroup v2 id of pid (inode of its cgroup v2 directory), 0 if unknown
  uint32_t uid = kUnknownUid;  // real uid of pid (/proc/<pid>/status)
  std::string parent_exe;      // readlink /proc/<pid>/exe: the image calling execve
  // Failing closed: the process is in a locked cgroup or below one, so on_timeout applies to it.
  bool locked = false;
  int fd = -1;  // the event's fd, valid only during the decider call (e.g. to hash the content)
};

enum class ExecVerdict : uint8_t { kAllow, kDeny };

struct ExecDecision {
  ExecVerdict verdict = ExecVerdict::kAllow;
  bool cacheable = true;  // false when the decision depended on uid/parent (not in the cache key)
  bool report = false;    // the guard calls the sink (denials, audit-mode would-denials, alerts)
  std::string reason;
  uint8_t code = 0;  // the decider's own classification of the reason, handed back to the sink
};

// Called on a guard worker thread, at most decider_threads at a time. May block (hashing a large
// file): the watchdog answers the exec on time regardless, and a late verdict is still cached.
using ExecDecider = std::function<ExecDecision(const ExecRequest&)>;
// Called for decisions with report=true (cached ones included, every time) and, with
// timed_out=true, for events answered with on_timeout (timeout, overflow) and for reported
// verdicts that came after the timeout. Calls are serialized but come from the guard's threads
// and hold up whichever thread made them: hand the data off, do not block. request.fd is -1.
using ExecDecisionSink =
    std::function<void(const ExecRequest&, const ExecDecision&, bool timed_out)>;

struct FanotifyGuardOptions {
  // Paths whose filesystems are marked (FAN_MARK_FILESYSTEM, falling back to FAN_MARK_MOUNT).
  std::vector<std::string> mounts;
  std::chrono::milliseconds decision_timeout{250};
  // Fail-open or fail-closed when the decider stalls, throws or the guard is overloaded. Deny
  // applies to the processes of the locked cgroups (set_locked_cgroups()) only: nothing else on
  // the host is refused because the guard is slow.
  ExecVerdict on_timeout = ExecVerdict::kAllow;
  // The permission warden: on unless a test turns it off. "" = palisade-warden beside this
  // process's executable.
  bool warden = true;
  std::string warden_executable;
  std::string warden_label = "exec";  // a restarted agent ends orphaned wardens of its label
  size_t cache_entries = 16384;       // bounded LRU; key: cgroup_id, dev, ino, ctime_ns
  // Permission events queued or being decided; beyond it: answered with on_timeout at once.
  size_t max_pending = 1024;
  size_t decider_threads = 2;  // how many decisions may run (or stall) at the same time
};

struct FanotifyGuardStats {
  uint64_t requests = 0;  // permission events received, the agent's own execs included
  uint64_t allowed = 0;   // responses written, by verdict (timeouts and overflow included)
  uint64_t denied = 0;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
  uint64_t cache_evictions = 0;  // capacity evictions only, not invalidate()/clear_cache()
  uint64_t timeouts = 0;
  uint64_t overflow_answers = 0;
  // Failed reads/writes on the group, kernel queue overflows, undecidable events, decider or
  // sink exceptions.
  uint64_t errors = 0;
  size_t cache_size = 0;
  size_t marked_filesystems = 0;  // successful marks (a filesystem or, as fallback, a mount)
  // Responses the guard did not write because its warden had answered the event meanwhile.
  uint64_t answered_by_warden = 0;
  WardenStats warden;
};

class FanotifyExecGuard {
 public:
  // Throws std::runtime_error saying which call failed, the errno text and what it needs
  // (CAP_SYS_ADMIN, CONFIG_FANOTIFY_ACCESS_PERMISSIONS) when permission events are unavailable
  // or a mount in options.mounts cannot be marked; std::invalid_argument for unusable options.
  static std::unique_ptr<FanotifyExecGuard> start(const FanotifyGuardOptions& options,
                                                  ExecDecider decider, ExecDecisionSink sink);
  // Stops the threads and closes the group: the kernel then allows whatever is pending. Waits
  // for decider calls in progress to return (execs are no longer held by then).
  ~FanotifyExecGuard();
  FanotifyExecGuard(const FanotifyExecGuard&) = delete;
  FanotifyExecGuard& operator=(const FanotifyExecGuard&) = delete;

  // Marks one more filesystem (or mount) later, e.g. a container rootfs; false with error set.
  bool mark(const std::string& path, std::string& error);
  void clear_cache();                           // policy changed
  void invalidate(uint64_t dev, uint64_t ino);  // the file was written: forget all its verdicts
  // The cgroups of locked workloads: failing closed, only their execs (and those of cgroups below
  // them) are refused when no verdict comes in time, by the guard or its warden.
  void set_locked_cgroups(const std::vector<uint64_t>& cgroup_ids);
  // Once this guard's marks are in place: ends the wardens an agent that died left (failing
  // closed, they keep refusing the locked cgroups' execs until then). start() does it when
  // options.mounts is not empty.
  void end_orphaned_wardens();
  FanotifyGuardStats stats() const;

 private:
  class Impl;
  explicit FanotifyExecGuard(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace palisade::agent

// Application lockdown from user space: the fanotify exec guard asks, this answers from the
// workload's allowlist, and denials become records for the pipeline. Also lists the files an
// allowlist names, for the kernel mechanisms (BPF-LSM, SIGKILL at exec), which can only compare
// file identities.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "palisade/base/bounded_queue.h"
#include "palisade/base/lru_map.h"
#include "palisade/policies/policy_set.h"

namespace palisade::agent {

struct ExecutableFile {
  std::string path;  // as the workload sees it
  dev_t dev = 0;
  uint64_t ino = 0;
  int64_t ctime_ns = 0;
};

// The directory a glob's matches can only be under: its part before the first glob character.
std::string literal_directory(const std::string& pattern);

// `path` with every symlink resolved as a process whose root is `root` ("" = /) would see it.
std::string resolve_in_root(const std::string& root, const std::string& path);

// The ELF interpreter (PT_INTERP) a program asks for; empty for static programs and non-ELF files.
std::string elf_interpreter(const std::string& path);

// The regular files under `root` ("" = this host's) that the policy's allowlist names: globs are
// expanded from their literal directory prefix; entries pinning a sha256 keep only files with that
// hash. Bounded by `limit` files.
std::vector<ExecutableFile> allowlisted_files(const policies::WorkloadPolicy& policy,
                                              const std::string& root, size_t limit = 20000);

struct ExecLockdownOptions {
  std::vector<std::string> mounts = {"/"};
  std::string warden_label = "exec";
  uint32_t timeout_ms = 250;
  bool fail_closed = false;
  size_t max_queued_denials = 4096;
};

class FanotifyExecGuard;
struct ExecRequest;
struct WardenStats;
// The warden part of the exec guard's status (docs/enforcement.md).
nlohmann::json warden_status(const WardenStats& stats);
class OverlayLayers;

class ExecLockdown {
 public:
  struct Target {
    std::shared_ptr<const policies::PolicySet> set;  // keeps the policy alive while deciding
    const policies::WorkloadPolicy* policy = nullptr;
    std::string workload;
    uint32_t slot = 0;
    // The container's root filesystem as this host sees it ("" = host): stripped from the paths
    // fanotify reports, and where the layers that tell container drift are mounted.
    std::string rootfs;
    // The ELF interpreters (PT_INTERP) of the allowlisted programs: the kernel opens them for exec
    // too, within the program's own execve.
    std::shared_ptr<const std::set<std::string>> interpreters;
  };
  // The locked-down workload of a process (by its cgroup); nullopt = not locked down.
  using Lookup = std::function<std::optional<Target>(uint64_t cgroup_id, uint32_t pid)>;
  using RecordSink = std::function<void(const std::vector<std::byte>& record)>;

  static bool fanotify_available(std::string& why_not);
  static std::unique_ptr<ExecLockdown> start(const ExecLockdownOptions& options, Lookup lookup);
  ~ExecLockdown();

  void policy_changed();  // cached verdicts are dropped
  // Marks the configured filesystems: until a workload is locked down nothing is marked, so an
  // agent with nothing to enforce does not make every exec on the host wait for it.
  void arm();
  bool armed() const;
  // Checks execs on one more filesystem (a container's root); marks each path once. `why` says
  // which workload needs it, for the status.
  void watch(const std::string& path, const std::string& why);
  // The cgroups whose execs are refused when no verdict comes in time (failing closed).
  void set_locked_cgroups(const std::vector<uint64_t>& cgroup_ids);
  // Hands the denial records queued since the last call to `deliver` (agent thread).
  void drain(const RecordSink& deliver);
  nlohmann::json status() const;

 private:
  explicit ExecLockdown(const ExecLockdownOptions& options)
      : options_(options), queued_(options.max_queued_denials, base::OnFull::kReject) {}
  void queue(std::vector<std::byte> record);
  void remember_allowed_exec(uint32_t pid);
  // The workload the decider judged an exec against, for its report: by the time the report is
  // written the process may be gone (a refused exec exits at once), and with it its cgroup.
  void remember_target(const ExecRequest& request, const Target& target);
  std::optional<Target> decided_target(const ExecRequest& request);
  bool allowed_exec_just_before(uint32_t pid);

  ExecLockdownOptions options_;
  Lookup lookup_;
  std::shared_ptr<OverlayLayers> layers_;  // container drift
  std::unique_ptr<FanotifyExecGuard> guard_;
  mutable std::mutex mutex_;
  // Denial records for the agent's thread; refused (and counted) when full.
  base::BoundedQueue<std::vector<std::byte>> queued_;
  // Processes whose exec was just allowed: their ELF interpreter's open follows (bounded).
  base::LruMap<uint32_t, std::chrono::steady_clock::time_point> recent_allowed_{4096};
  base::LruMap<uint64_t, Target> decided_{1024};  // by pid and inode
  struct Watched {
    std::string path;
    std::string why;
  };
  nlohmann::json watched_status() const;  // under mutex_
  std::vector<Watched> marked_;
  bool armed_ = false;
  std::vector<std::string> mark_errors_;
};

}  // namespace palisade::agent

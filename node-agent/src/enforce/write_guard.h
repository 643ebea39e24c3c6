// Read-only paths enforced from user space: a fanotify group with FAN_OPEN_PERM marks on the
// directories (and files) a policy makes read-only, and an eBPF map that says with which flags
// each thread of such a workload is opening. A write-open is refused (EPERM) before any byte is
// written; reads are let through at once. Like the exec guard, it has a permission warden that
// answers (allow) when the agent cannot.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "enforce/warden_link.h"

namespace palisade::agent {

struct WriteRequest {
  uint32_t tid = 0;
  uint32_t open_flags = 0;
  std::string path;  // as this host sees it
};

struct WriteGuardStats {
  uint64_t requests = 0;
  uint64_t denied = 0;
  uint64_t no_intent = 0;  // no recorded flags: not a guarded workload, allowed
  size_t marked = 0;
  uint64_t mark_errors = 0;
  uint64_t answered_by_warden = 0;  // responses not written: the warden had answered meanwhile
  WardenStats warden;
};

class WriteGuard {
 public:
  // The reason to refuse the write-open, or nullopt to allow it. Called on the guard's thread.
  using Decide = std::function<std::optional<std::string>(const WriteRequest&)>;
  using Sink = std::function<void(const WriteRequest&, const std::string& reason)>;

  // Throws std::runtime_error when fanotify permission events are unavailable.
  static std::unique_ptr<WriteGuard> start(int intent_map_fd, Decide decide, Sink sink,
                                           const std::string& warden_label);
  ~WriteGuard();

  // Marks these paths (directories with everything below them, bounded; files themselves) and
  // forgets the previous marks.
  void watch(const std::vector<std::string>& paths);
  WriteGuardStats stats() const;

 private:
  WriteGuard() = default;
  void run();
  void read_batch(uint64_t control);
  void answer(int event_fd, const WardenTicket& ticket, uint32_t response);

  int fanotify_fd_ = -1;
  int stop_fd_ = -1;
  int intent_fd_ = -1;
  Decide decide_;
  Sink sink_;
  std::unique_ptr<WardenLink> warden_;
  std::thread thread_;
  std::vector<std::string> marked_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> denied_{0};
  std::atomic<uint64_t> no_intent_{0};
  std::atomic<uint64_t> mark_errors_{0};
  std::atomic<uint64_t> answered_by_warden_{0};
};

// Whether open(2) flags ask to write: O_WRONLY, O_RDWR or O_TRUNC.
bool write_intent(uint32_t open_flags);

}  // namespace palisade::agent

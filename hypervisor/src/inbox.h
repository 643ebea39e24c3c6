// What the libvirt threads (event loop, host sessions, inspection workers) hand the monitor's
// main thread: a bounded queue. Callbacks never block: when the queue is full a domain event is
// dropped and counted (reported in the monitor's status, and the monitor re-syncs the inventory
// so that what it missed is reported), never lost silently. Notices about hosts, finished work
// and policies are rare and carry what cannot be recovered: they may use a reserve beyond the
// capacity.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "palisade/base/bounded_queue.h"

namespace palisade::hypervisor {

class Connection;

struct Notice {
  enum class Type : uint8_t {
    kHostUp,           // connected (again): re-sync the inventory
    kHostDown,         // the connection closed or stopped answering
    kHostUnreachable,  // a connection attempt failed (reported once per outage)
    kLifecycle,        // a domain lifecycle event
    kMetadata,         // a domain's metadata (labels) changed
    kDevice,           // a device was added or removed: NICs and disks may differ
    kWork,             // a finished background job (inspection) with its result
    kPolicy,           // a new policy set (payload) to apply between two events
    kResponseDone,     // a response carried out (or not) by the response worker, to audit
  };
  Type type = Type::kLifecycle;
  size_t host = 0;  // index of the host session
  std::string uuid;
  std::string name;
  int event = 0;
  int detail = 0;
  std::string message;
  std::shared_ptr<void> payload;  // kWork: the job's result
};

class Inbox {
 public:
  static constexpr size_t kReserve = 4096;

  explicit Inbox(size_t capacity)
      : queue_(base::QueueLimits{capacity, 0, kReserve}, base::OnFull::kReject) {}

  bool push(Notice notice) {
    const bool recoverable = notice.type == Notice::Type::kLifecycle ||
                             notice.type == Notice::Type::kMetadata ||
                             notice.type == Notice::Type::kDevice;
    const base::PushResult result =
        recoverable ? queue_.push(std::move(notice)) : queue_.push_urgent(std::move(notice));
    if (result == base::PushResult::kQueued) return true;
    unsynced_drops_ = true;
    return false;
  }

  // Whether domain events were dropped since the last call: the inventory needs a re-sync.
  bool take_drops() { return unsynced_drops_.exchange(false); }

  std::optional<Notice> pop_until(std::chrono::steady_clock::time_point deadline) {
    return queue_.pop_until(deadline);
  }

  uint64_t dropped() const {
    const base::QueueStats stats = queue_.stats();
    return stats.rejected_full + stats.rejected_closed;
  }

 private:
  base::BoundedQueue<Notice> queue_;
  std::atomic<bool> unsynced_drops_{false};
};

}  // namespace palisade::hypervisor

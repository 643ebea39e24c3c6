// What the libvirt threads (event loop, host sessions, inspection workers) hand the monitor's
// main thread: a bounded queue. Callbacks never block: when the queue is full a domain event is
// dropped and counted (reported in the monitor's status, and the monitor re-syncs the inventory
// so that what it missed is reported), never lost silently. Notices about hosts, finished work
// and policies are rare and carry what cannot be recovered: they may use a reserve beyond the
// capacity.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

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

  explicit Inbox(size_t capacity) : capacity_(capacity) {}

  bool push(Notice notice) {
    const bool critical = notice.type != Notice::Type::kLifecycle &&
                          notice.type != Notice::Type::kMetadata &&
                          notice.type != Notice::Type::kDevice;
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= capacity_ + (critical ? kReserve : 0)) {
        dropped_++;
        unsynced_drops_ = true;
        return false;
      }
      queue_.push_back(std::move(notice));
    }
    ready_.notify_one();
    return true;
  }

  // Whether domain events were dropped since the last call: the inventory needs a re-sync.
  bool take_drops() {
    std::lock_guard lock(mutex_);
    return std::exchange(unsynced_drops_, false);
  }

  std::optional<Notice> pop_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    ready_.wait_until(lock, deadline, [&] { return !queue_.empty(); });
    if (queue_.empty()) return std::nullopt;
    Notice n = std::move(queue_.front());
    queue_.pop_front();
    return n;
  }

  uint64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }

 private:
  size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Notice> queue_;
  uint64_t dropped_ = 0;
  bool unsynced_drops_ = false;
};

}  // namespace palisade::hypervisor

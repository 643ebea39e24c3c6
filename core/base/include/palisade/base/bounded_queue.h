// The one hand-off queue between threads. Memory is bounded by an item count and, optionally, a
// byte budget; what happens at the bound is the queue's overflow policy: the producer waits
// (back-pressure, for work that must not be lost) or the item is refused and counted (for
// producers that must never block: callbacks, the event path). Every refusal is counted by
// reason, so a loss is always reported.
//
// Consumers that need "everything handed over is finished" (a store's drain, a publisher's
// flush) acknowledge popped items with done() and wait with wait_idle().
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace palisade::base {

enum class OnFull : uint8_t {
  kWait,    // the producer waits for room (back-pressure)
  kReject,  // push() refuses the item at once and counts it
};

enum class PushResult : uint8_t { kQueued, kFull, kClosed };

struct QueueLimits {
  size_t items = 1024;
  size_t bytes = 0;    // 0: no byte budget, only the item count
  size_t reserve = 0;  // extra items push_urgent() may use beyond `items`
};

struct QueueStats {
  uint64_t pushed = 0;
  uint64_t popped = 0;
  uint64_t rejected_full = 0;    // refused at the bound (kReject, or push_urgent beyond reserve)
  uint64_t rejected_closed = 0;  // pushed after close()
  uint64_t abandoned = 0;        // queued but dropped by cancel()
  uint64_t full_waits = 0;       // times a producer waited for room (kWait)
  size_t depth = 0;
  size_t bytes = 0;
  size_t high_water = 0;  // the deepest the queue has been
};

template <typename T>
class BoundedQueue {
 public:
  using Clock = std::chrono::steady_clock;

  explicit BoundedQueue(size_t capacity, OnFull on_full = OnFull::kWait)
      : BoundedQueue(QueueLimits{capacity, 0, 0}, on_full) {}
  BoundedQueue(QueueLimits limits, OnFull on_full) : limits_(limits), on_full_(on_full) {
    limits_.items = std::max<size_t>(limits_.items, 1);
  }
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // `bytes` is the item's share of the byte budget (ignored without one). An item larger than
  // the whole budget is still taken into an empty queue, so it cannot wait forever.
  PushResult push(T item, size_t bytes = 0) {
    std::unique_lock lock(mutex_);
    if (!closed_ && full(bytes, 0)) {
      if (on_full_ == OnFull::kReject) return refuse_full();
      stats_.full_waits++;
      producers_waiting_++;
      not_empty_.notify_one();  // a consumer waiting for a batch should take what is here
      not_full_.wait(lock, [&] { return closed_ || !full(bytes, 0); });
      producers_waiting_--;
    }
    return enqueue(lock, std::move(item), bytes);
  }

  // Never waits; may use the reserve. For rare items that carry what cannot be recovered.
  PushResult push_urgent(T item, size_t bytes = 0) {
    std::unique_lock lock(mutex_);
    if (!closed_ && full(bytes, limits_.reserve)) return refuse_full();
    return enqueue(lock, std::move(item), bytes);
  }

  // Waits for an item. Empty once the queue is closed and drained.
  std::optional<T> pop() { return pop_until(Clock::time_point::max()); }

  // Empty also when the deadline passes first.
  std::optional<T> pop_until(Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    wait_for_items(lock, deadline, 1);
    if (items_.empty()) return std::nullopt;
    return take_front();
  }

  // Up to `max` items, once `wake_at` are queued, the deadline passes or the queue is closed
  // (whichever comes first; possibly none). For consumers that write in batches.
  std::vector<T> pop_batch(size_t max, size_t wake_at, Clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    wait_for_items(lock, deadline, std::max<size_t>(wake_at, 1));
    return take_locked(std::min(max, items_.size()));
  }

  // Everything queued now, without waiting.
  std::vector<T> take_all() {
    std::lock_guard lock(mutex_);
    return take_locked(items_.size());
  }

  // The consumer finished `n` popped items (see wait_idle).
  void done(size_t n = 1) {
    {
      std::lock_guard lock(mutex_);
      in_flight_ -= std::min(n, in_flight_);
    }
    idle_.notify_all();
  }

  // Waits until nothing is queued and every popped item is done(); false on timeout.
  bool wait_idle(Clock::time_point deadline = Clock::time_point::max()) {
    std::unique_lock lock(mutex_);
    not_empty_.notify_all();  // a batching consumer should not sit out its timer
    return idle_.wait_until(lock, deadline, [this] { return items_.empty() && in_flight_ == 0; });
  }

  // No more pushes; what is queued can still be popped.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    wake_all();
  }

  // Closes and drops what is queued (counted as abandoned); returns how many were dropped.
  size_t cancel() {
    size_t dropped = 0;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      dropped = items_.size();
      stats_.abandoned += dropped;
      items_.clear();
      bytes_ = 0;
    }
    wake_all();
    return dropped;
  }

  bool closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

  QueueStats stats() const {
    std::lock_guard lock(mutex_);
    QueueStats out = stats_;
    out.depth = items_.size();
    out.bytes = bytes_;
    return out;
  }

 private:
  struct Slot {
    T item;
    size_t bytes;
  };

  bool full(size_t incoming_bytes, size_t extra_items) const {
    if (items_.size() >= limits_.items + extra_items) return true;
    return limits_.bytes != 0 && !items_.empty() && bytes_ + incoming_bytes > limits_.bytes;
  }

  PushResult refuse_full() {
    stats_.rejected_full++;
    return PushResult::kFull;
  }

  PushResult enqueue(std::unique_lock<std::mutex>& lock, T&& item, size_t bytes) {
    if (closed_) {
      stats_.rejected_closed++;
      return PushResult::kClosed;
    }
    items_.push_back(Slot{std::move(item), bytes});
    bytes_ += bytes;
    stats_.pushed++;
    stats_.high_water = std::max(stats_.high_water, items_.size());
    // Wake a batching consumer only once its batch is complete; a single-item one at once. Read
    // under the lock: the consumer sets wake_at_ while it holds it (found by scripts/tsan.sh).
    const bool wake = items_.size() == 1 || items_.size() >= wake_at_;
    lock.unlock();
    if (wake) not_empty_.notify_one();
    return PushResult::kQueued;
  }

  void wait_for_items(std::unique_lock<std::mutex>& lock, Clock::time_point deadline,
                      size_t wanted) {
    wake_at_ = wanted;
    // A waiting producer means the queue is full: a batch is as complete as it can get.
    const auto ready = [&] {
      return closed_ || items_.size() >= wanted || (!items_.empty() && producers_waiting_ > 0);
    };
    if (deadline == Clock::time_point::max()) {
      not_empty_.wait(lock, ready);
    } else {
      not_empty_.wait_until(lock, deadline, ready);
    }
    wake_at_ = 1;
  }

  T take_front() {
    Slot slot = std::move(items_.front());
    items_.pop_front();
    bytes_ -= slot.bytes;
    stats_.popped++;
    in_flight_++;
    not_full_.notify_all();
    if (items_.empty() && in_flight_ == 0) idle_.notify_all();
    return std::move(slot.item);
  }

  std::vector<T> take_locked(size_t n) {
    std::vector<T> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) out.push_back(take_front());
    return out;
  }

  void wake_all() {
    not_empty_.notify_all();
    not_full_.notify_all();
    idle_.notify_all();
  }

  QueueLimits limits_;
  const OnFull on_full_;
  mutable std::mutex mutex_;
  std::condition_variable not_empty_;
  std::condition_variable not_full_;
  std::condition_variable idle_;
  std::deque<Slot> items_;
  size_t bytes_ = 0;
  size_t in_flight_ = 0;
  size_t wake_at_ = 1;
  size_t producers_waiting_ = 0;
  bool closed_ = false;
  QueueStats stats_;
};

}  // namespace palisade::base

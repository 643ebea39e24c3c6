// The page the agent and its permission warden share (a memfd both map). The warden is a separate
// small process holding a duplicate of a fanotify permission group: when the agent stops answering
// (stopped, hung, crashed, OOM-killed), the warden answers in its place, so no exec or open waits
// on a process that cannot run. Plain data and lock-free atomics only: both sides map it, and the
// warden links nothing else of the agent.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace palisade::agent::warden {

inline constexpr uint32_t kMagic = 0x5041'4c57;  // "PALW"
inline constexpr uint32_t kVersion = 1;
// The file descriptors the warden finds at start: the fanotify group and the shared page.
inline constexpr int kGroupFd = 3;
inline constexpr int kSharedFd = 4;
// Events the agent holds at once (read, not yet answered), one slot each: the queue bound plus a
// full read buffer. More are still answered by the warden's sweep, without their requester.
inline constexpr size_t kSlots = 2048;
// Cgroups whose execs the warden refuses when the guard fails closed (locked workloads).
inline constexpr size_t kLockedCgroups = 1024;

// Who answers the group's events. `control` holds epoch * 2 + owner: every change of owner bumps
// the epoch, and the agent answers an event only while `control` still has the value it had when
// the agent read the event. So a response the agent computed before a takeover is never written
// after it, and one it was writing at that very moment goes to a descriptor number the warden
// keeps occupied in its own table: it cannot answer one of the warden's events.
inline constexpr uint64_t kOwnerWarden = 1;
inline uint64_t owner_of(uint64_t control) {
  return control & 1U;
}

struct Slot {
  std::atomic<int32_t> fd;    // the event's descriptor number in the agent, -1 = free
  std::atomic<uint32_t> pid;  // the requester
};

struct Shared {
  uint32_t magic;
  uint32_t version;
  uint32_t fail_closed;  // 1: the warden refuses execs of the locked cgroups
  uint32_t pad;

  // Written by the agent.
  std::atomic<uint64_t> control;
  std::atomic<int64_t> heartbeat_ns;       // CLOCK_MONOTONIC of the agent watchdog's last tick
  std::atomic<int64_t> reader_busy_since;  // 0 while the agent's reader waits for events
  std::atomic<uint64_t> handback_wanted;   // the agent is back and asks for its events again
  std::atomic<int32_t> highest_fd;         // the highest event descriptor number the agent saw
  std::atomic<uint32_t> stop;              // the agent closes the guard: the warden exits
  std::atomic<uint64_t> locked_sequence;   // odd while the agent rewrites locked[] (a seqlock)
  std::atomic<uint32_t> locked_count;
  std::atomic<uint64_t> locked[kLockedCgroups];
  Slot slots[kSlots];

  // Written by the warden.
  std::atomic<uint64_t> takeovers;
  std::atomic<uint64_t> handbacks;
  std::atomic<uint64_t> answered_allow;  // events the warden answered, by verdict
  std::atomic<uint64_t> answered_deny;
  std::atomic<uint64_t> answered_unattributed;  // found by the sweep, requester unknown: allowed
  std::atomic<int64_t> last_takeover_ns;
  std::atomic<int64_t> last_handback_ns;
  std::atomic<int64_t> longest_takeover_ns;
};

static_assert(std::atomic<uint64_t>::is_always_lock_free &&
                  std::atomic<int32_t>::is_always_lock_free,
              "the shared page needs address-free atomics");

}  // namespace palisade::agent::warden

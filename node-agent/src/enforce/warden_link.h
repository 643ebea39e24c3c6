// The agent's side of a permission warden (warden_shared.h): starts palisade-warden with a
// duplicate of one fanotify permission group, keeps its heartbeat, records the events the agent
// holds, and says whether the agent may still answer an event it read. Used by the exec guard and
// the read-only-path guard; one warden per group.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace palisade::agent {

namespace warden {
struct Shared;
}

struct WardenOptions {
  std::string executable;  // "" = palisade-warden in the directory of this process's executable
  std::string label;       // names the group (e.g. "exec"); a restarted agent ends its orphans
  // The agent counts as not answering when its watchdog has not ticked for this long, or its
  // reader has been busy with one batch for this long.
  std::chrono::milliseconds stale_after{125};
  std::chrono::milliseconds tick{25};  // the agent's heartbeat and the warden's polling period
  bool fail_closed = false;  // the warden refuses the locked cgroups' execs rather than allow them
};

struct WardenStats {
  bool running = false;
  pid_t pid = 0;
  std::string executable;
  uint64_t takeovers = 0;  // times the warden answered in the agent's place
  uint64_t handbacks = 0;
  bool answering_now = false;
  uint64_t answered_allow = 0;
  uint64_t answered_deny = 0;
  uint64_t answered_unattributed = 0;  // found by its sweep, requester unknown: allowed
  uint64_t restarts = 0;               // a warden that died was started again
  int64_t longest_takeover_ms = 0;
  std::string last_error;
};

// One event as the agent read it: who owned the group then, and the slot that tells the warden.
struct WardenTicket {
  uint64_t control = 0;
  int slot = -1;
};

// Ends the wardens of this label whose agent is gone (`palisade agent --uninstall` too).
void end_orphaned_wardens(const std::string& label);

class WardenLink {
 public:
  // Starts the warden. Throws std::runtime_error naming the executable when it cannot be run.
  WardenLink(int group_fd, WardenOptions options);
  ~WardenLink();  // ends the warden (the agent answers its own events until then)
  WardenLink(const WardenLink&) = delete;
  WardenLink& operator=(const WardenLink&) = delete;

  // Reads the group as its owner: runs `read` with the control value to hold its events under,
  // the reader marked busy meanwhile. While the warden holds the group it does not read: it asks
  // for the group back, waits a moment and returns false.
  bool read_as_owner(const std::function<void(uint64_t control)>& read);
  // After reading an event: record it, so the warden can answer it if the agent stops now.
  WardenTicket hold(int event_fd, uint32_t pid, uint64_t control);
  // Whether the agent may write the response to an event it holds (no takeover since it was
  // read); call release() after the write, or instead of it.
  bool may_answer(const WardenTicket& ticket) const;
  void release(const WardenTicket& ticket);

  void heartbeat();  // from the guard's watchdog, every tick; restarts a warden that died
  std::chrono::milliseconds tick() const { return options_.tick; }
  void set_locked_cgroups(const std::vector<uint64_t>& cgroup_ids);
  // Wardens of this label left by an agent that died (failing closed, they keep refusing until
  // then): ended once this agent's guard is in place.
  void end_orphans() const;
  WardenStats stats() const;

 private:
  void spawn();
  void reap_locked();

  const int group_fd_;
  const WardenOptions options_;
  std::string executable_;
  int shared_fd_ = -1;
  warden::Shared* shared_ = nullptr;
  mutable std::mutex mu_;
  pid_t pid_ = 0;
  uint64_t restarts_ = 0;
  std::chrono::steady_clock::time_point last_spawn_{};
  std::string last_error_;
  size_t next_slot_ = 0;  // the reader's search hint
};

}  // namespace palisade::agent

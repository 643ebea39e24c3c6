// palisade-warden: answers a fanotify permission group's events while the agent that owns the
// group cannot (docs/enforcement.md, "When the agent cannot answer"). Started by the agent with the
// group on descriptor 3 and the shared page on descriptor 4; it watches the agent's heartbeat and,
// when the agent is overdue with events waiting, takes the group over until the agent asks for it
// back. Small on purpose: no threads, nothing of the agent linked in but its platform helpers
// (palisade_base).
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "enforce/warden_shared.h"
#include "palisade/base/cgroup.h"
#include "palisade/base/proc.h"

namespace palisade::agent::warden {
namespace {

constexpr int kMaxSweep = 1 << 20;  // the kernel's default nr_open: no descriptor number above it

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

template <typename T>
bool parse(std::string_view text, T& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

// The descriptors it was given and nothing else: what the agent had open is none of its business.
void close_other_descriptors() {
  if (syscall(SYS_close_range, kSharedFd + 1, ~0U, 0) == 0) return;
  for (int fd = kSharedFd + 1; fd < 4096; ++fd) close(fd);
}

// Keeps only what it needs: the kernel opens each event's file with the reader's credentials, so
// reading any file (an exec-only binary too) and searching any directory; and comparing the
// agent's descriptor with its own (kcmp), which takes ptrace read access to the agent.
bool keep_only_needed_capabilities() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  std::array<__user_cap_data_struct, 2> data{};
  const uint32_t keep =
      (1U << CAP_DAC_OVERRIDE) | (1U << CAP_DAC_READ_SEARCH) | (1U << CAP_SYS_PTRACE);
  if (syscall(SYS_capget, &header, data.data()) != 0) return false;
  for (auto& d : data) {
    d.effective &= keep;
    d.permitted &= keep;
    d.inheritable = 0;
  }
  data[1].effective = data[1].permitted = 0;  // every capability above 31
  return syscall(SYS_capset, &header, data.data()) == 0;
}

int pidfd_of(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

class Warden {
 public:
  Warden(const char* label, Shared& shared, pid_t agent, int agent_pidfd, int agent_group_fd,
         int64_t stale_ns, int tick_ms)
      : label_(label),
        shared_(shared),
        agent_(agent),
        agent_pidfd_(agent_pidfd),
        agent_group_fd_(agent_group_fd),
        stale_ns_(stale_ns),
        tick_ms_(tick_ms),
        null_fd_(open("/dev/null", O_RDONLY | O_CLOEXEC)) {}

  int run() {
    for (;;) {
      const bool owned = owner_of(shared_.control.load()) == kOwnerWarden;
      std::array<pollfd, 2> fds{{{agent_pidfd_, POLLIN, 0}, {kGroupFd, POLLIN, 0}}};
      if (poll(fds.data(), owned ? 2 : 1, tick_ms_) < 0 && errno != EINTR) return 2;
      if (shared_.stop.load() != 0) return 0;  // the agent closes its guard
      if (fds[0].revents != 0 || !agent_holds_group()) return agent_gone();
      const int64_t now = now_ns();
      if (!owned) {
        if (agent_overdue(now) && work_waiting()) take_over(now);
        continue;
      }
      answer_everything(now);
      if (shared_.handback_wanted.load() != 0 && !agent_overdue(now)) hand_back(now);
    }
  }

 private:
  // An agent that re-executed itself lives on without this group (it is close-on-exec): the
  // process is there, but the guard this warden stands in for is not.
  bool agent_holds_group() const {
    const long same = syscall(SYS_kcmp, agent_, getpid(), KCMP_FILE, agent_group_fd_, kGroupFd);
    return same == 0 || (same < 0 && errno != EBADF);
  }

  bool agent_overdue(int64_t now) const {
    if (now - shared_.heartbeat_ns.load() > stale_ns_) return true;
    const int64_t busy = shared_.reader_busy_since.load();
    return busy != 0 && now - busy > stale_ns_;
  }

  bool work_waiting() const {
    pollfd group{kGroupFd, POLLIN, 0};
    if (poll(&group, 1, 0) > 0) return true;
    return std::any_of(std::begin(shared_.slots), std::end(shared_.slots),
                       [](const Slot& slot) { return slot.fd.load() >= 0; });
  }

  void take_over(int64_t now) {
    uint64_t control = shared_.control.load();
    if (owner_of(control) == kOwnerWarden ||
        !shared_.control.compare_exchange_strong(control, control + 1)) {
      return;
    }
    shared_.takeovers.fetch_add(1);
    shared_.last_takeover_ns.store(now);
    taken_at_ = now;
    occupy_agent_descriptor_numbers();
    last_sweep_ = 0;
    answer_everything(now);
  }

  void hand_back(int64_t now) {
    answer_everything(0);  // a last sweep: nothing read before the handback stays unanswered
    uint64_t control = shared_.control.load();
    if (!shared_.control.compare_exchange_strong(control, control + 1)) return;
    shared_.handback_wanted.store(0);
    shared_.handbacks.fetch_add(1);
    shared_.last_handback_ns.store(now);
    const int64_t took = now - taken_at_;
    if (took > shared_.longest_takeover_ns.load()) shared_.longest_takeover_ns.store(took);
    for (int fd : occupied_) close(fd);
    occupied_.clear();
  }

  // The agent is gone: its own descriptors are closed, but the events it had read stay pending
  // for as long as this process keeps the group open. Answer them, then leave: closing the last
  // reference to the group makes the kernel allow what is left. Failing closed, stay and keep
  // refusing the locked cgroups' execs until a new agent's guard ends this one.
  int agent_gone() {
    answer_everything(0);
    if (shared_.fail_closed == 0) {
      std::fprintf(stderr,
                   "palisade-warden %s: agent %d is gone, leaving its group to the kernel\n",
                   label_, agent_);
      return 0;
    }
    std::fprintf(stderr,
                 "palisade-warden %s: agent %d is gone; refusing the locked cgroups' execs until "
                 "a new agent's guard runs\n",
                 label_, agent_);
    uint64_t control = shared_.control.load();
    if (owner_of(control) != kOwnerWarden)
      shared_.control.compare_exchange_strong(control, control + 1);
    shared_.takeovers.fetch_add(1);
    for (;;) {
      pollfd group{kGroupFd, POLLIN, 0};
      if (poll(&group, 1, -1) < 0 && errno != EINTR) return 2;
      answer_queued();
    }
  }

  void answer_everything(int64_t now) {
    answer_slots();
    answer_queued();
    if (now == 0 || now - last_sweep_ >= static_cast<int64_t>(tick_ms_) * 1'000'000) {
      sweep();
      last_sweep_ = now;
    }
  }

  // Events the agent read and recorded: their requester is known, so the fail mode applies.
  void answer_slots() {
    for (auto& slot : shared_.slots) {
      const int32_t fd = slot.fd.load();
      if (fd < 0) continue;
      const bool deny = refused(slot.pid.load());
      if (respond(fd, deny)) (deny ? shared_.answered_deny : shared_.answered_allow).fetch_add(1);
    }
  }

  void answer_queued() {
    alignas(fanotify_event_metadata) std::array<char, 4096> buffer{};
    for (;;) {
      const ssize_t length = read(kGroupFd, buffer.data(), buffer.size());
      if (length <= 0) return;  // EAGAIN: the group is non-blocking
      size_t offset = 0;
      while (offset + sizeof(fanotify_event_metadata) <= static_cast<size_t>(length)) {
        fanotify_event_metadata event{};
        std::memcpy(&event, buffer.data() + offset, sizeof event);
        if (event.event_len < sizeof event) return;
        offset += event.event_len;
        if (event.fd < 0) continue;
        const bool deny =
            (event.mask & (FAN_OPEN_EXEC_PERM | FAN_OPEN_PERM | FAN_ACCESS_PERM)) != 0 &&
            refused(static_cast<uint32_t>(event.pid));
        if (respond(event.fd, deny)) {
          (deny ? shared_.answered_deny : shared_.answered_allow).fetch_add(1);
        }
        close(event.fd);
      }
    }
  }

  // Events the agent read but had not recorded yet when it stopped: try every descriptor number
  // it may have used. A number that is no pending event is refused by the kernel (ENOENT); this
  // process holds no event of its own meanwhile, so a match can only be one of the agent's.
  void sweep() {
    const int ceiling = sweep_ceiling();
    for (int fd = 0; fd < ceiling; ++fd) {
      if (respond(fd, false)) shared_.answered_unattributed.fetch_add(1);
    }
  }

  // Above every descriptor number the agent may hold: its table's size while it lives, else the
  // highest event descriptor it recorded, with room for one more read's worth.
  int sweep_ceiling() const {
    int ceiling = shared_.highest_fd.load() + 512;
    if (const auto status = base::read_proc_status(static_cast<uint32_t>(agent_))) {
      ceiling = std::max(ceiling, static_cast<int>(status->fd_size));
    }
    return std::min(ceiling, kMaxSweep);
  }

  // While it answers for the agent, this process keeps every descriptor number the agent may
  // still write a response to occupied, so that none of its own events can have that number.
  void occupy_agent_descriptor_numbers() {
    const int ceiling = sweep_ceiling();
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 &&
        limit.rlim_cur < static_cast<rlim_t>(ceiling) + 4096) {
      limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, static_cast<rlim_t>(ceiling) + 4096);
      setrlimit(RLIMIT_NOFILE, &limit);
    }
    if (null_fd_ < 0) return;
    for (int fd = 0; fd < ceiling; ++fd) {
      if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
      if (dup2(null_fd_, fd) == fd) occupied_.push_back(fd);
    }
  }

  bool respond(int fd, bool deny) const {
    fanotify_response response{};
    response.fd = fd;
    response.response = deny ? FAN_DENY : FAN_ALLOW;
    return write(kGroupFd, &response, sizeof response) == sizeof response;
  }

  // Failing closed, an exec of a locked workload is refused: its cgroup or an ancestor is listed.
  bool refused(uint32_t pid) const {
    if (shared_.fail_closed == 0 || pid == 0) return false;
    const std::vector<uint64_t> ancestry = base::cgroup_ancestry_of_process(pid);
    // Gone or unreadable: not known to be outside the lockdown.
    if (ancestry.empty()) return true;
    return std::any_of(ancestry.begin(), ancestry.end(),
                       [this](uint64_t id) { return locked(id); });
  }

  bool locked(uint64_t cgroup_id) const {
    for (int attempt = 0; attempt < 100; ++attempt) {
      const uint64_t before = shared_.locked_sequence.load();
      if ((before & 1U) != 0) continue;
      const uint32_t count = std::min<uint32_t>(shared_.locked_count.load(), kLockedCgroups);
      bool found = false;
      for (uint32_t i = 0; i < count && !found; ++i) found = shared_.locked[i].load() == cgroup_id;
      if (shared_.locked_sequence.load() == before) return found;
    }
    return true;  // the agent is stopped in the middle of a rewrite: refuse, as failing closed says
  }

  const char* const label_;
  Shared& shared_;
  const pid_t agent_;
  const int agent_pidfd_;
  const int agent_group_fd_;
  const int64_t stale_ns_;
  const int tick_ms_;
  const int null_fd_;
  std::vector<int> occupied_;
  int64_t taken_at_ = 0;
  int64_t last_sweep_ = 0;
};

int usage() {
  std::fputs(
      "palisade-warden is started by the palisade agent: "
      "palisade-warden LABEL AGENT_PID AGENT_GROUP_FD STALE_MS TICK_MS\n",
      stderr);
  return 64;
}

}  // namespace
}  // namespace palisade::agent::warden

int main(int argc, char** argv) {
  using namespace palisade::agent::warden;
  if (argc != 6) return usage();
  pid_t agent = 0;
  int agent_group_fd = -1;
  int64_t stale_ms = 0;
  int tick_ms = 0;
  if (!parse(argv[2], agent) || !parse(argv[3], agent_group_fd) || !parse(argv[4], stale_ms) ||
      !parse(argv[5], tick_ms) || agent <= 0 || agent_group_fd < 0 || stale_ms <= 0 ||
      tick_ms <= 0) {
    return usage();
  }
  close_other_descriptors();
  struct stat st {};
  if (fstat(kSharedFd, &st) != 0 || static_cast<size_t>(st.st_size) < sizeof(Shared)) {
    std::fputs("palisade-warden: descriptor 4 is not the shared page\n", stderr);
    return 65;
  }
  void* page = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, kSharedFd, 0);
  if (page == MAP_FAILED) return 66;
  auto& shared = *static_cast<Shared*>(page);
  if (shared.magic != kMagic || shared.version != kVersion) return 65;
  const int agent_pidfd = pidfd_of(agent);
  if (agent_pidfd < 0) return 0;  // the agent is gone already
  prctl(PR_SET_NAME, "palisade-warden", 0, 0, 0);
  if (!keep_only_needed_capabilities()) {
    std::fprintf(stderr, "palisade-warden %s: cannot drop capabilities: %s\n", argv[1],
                 std::strerror(errno));
  }
  Warden warden(argv[1], shared, agent, agent_pidfd, agent_group_fd, stale_ms * 1'000'000, tick_ms);
  return warden.run();
}

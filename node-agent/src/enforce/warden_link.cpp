#include "enforce/warden_link.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <thread>

#include "enforce/warden_shared.h"
#include "palisade/base/errno_text.h"
#include "palisade/base/proc.h"

extern char** environ;

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Beside the palisade binary, as installed and as built; a test binary elsewhere in the build
// tree finds the one this build made.
std::string default_executable() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  const fs::path beside = self.parent_path() / "palisade-warden";
  if (!ec && access(beside.c_str(), X_OK) == 0) return beside.string();
  return PALISADE_WARDEN_BUILD_PATH;
}

// argv of a process, from its NUL-separated /proc/<pid>/cmdline.
std::vector<std::string> command_line(uint32_t pid) {
  const std::string text = base::read_proc_file(pid, "cmdline", 4096);
  std::vector<std::string> argv;
  for (size_t at = 0; at < text.size();) {
    const size_t end = std::min(text.find('\0', at), text.size());
    argv.emplace_back(text, at, end - at);
    at = end + 1;
  }
  return argv;
}

}  // namespace

WardenLink::WardenLink(int group_fd, WardenOptions options)
    : group_fd_(group_fd), options_(std::move(options)) {
  executable_ = options_.executable.empty() ? default_executable() : options_.executable;
  shared_fd_ = memfd_create("palisade-warden", MFD_CLOEXEC);
  if (shared_fd_ < 0 || ftruncate(shared_fd_, sizeof(warden::Shared)) != 0) {
    throw std::runtime_error("permission warden: cannot create its shared page: " +
                             base::errno_text(errno));
  }
  void* page =
      mmap(nullptr, sizeof(warden::Shared), PROT_READ | PROT_WRITE, MAP_SHARED, shared_fd_, 0);
  if (page == MAP_FAILED) {
    throw std::runtime_error("permission warden: cannot map its shared page: " +
                             base::errno_text(errno));
  }
  shared_ = new (page) warden::Shared{};
  shared_->magic = warden::kMagic;
  shared_->version = warden::kVersion;
  shared_->fail_closed = options_.fail_closed ? 1 : 0;
  for (auto& slot : shared_->slots) slot.fd.store(-1);
  shared_->heartbeat_ns.store(monotonic_ns());
  std::lock_guard lock(mu_);
  spawn();
  if (pid_ == 0) throw std::runtime_error(last_error_);
}

WardenLink::~WardenLink() {
  std::unique_lock lock(mu_);
  shared_->stop.store(1);
  if (pid_ > 0) {
    // It polls with the tick: give it a few, then make sure.
    for (int i = 0; i < 20 && pid_ > 0; ++i) {
      lock.unlock();
      std::this_thread::sleep_for(options_.tick);
      lock.lock();
      reap_locked();
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  munmap(shared_, sizeof(warden::Shared));
  close(shared_fd_);
}

void WardenLink::spawn() {
  last_spawn_ = Clock::now();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, group_fd_, warden::kGroupFd);
  posix_spawn_file_actions_adddup2(&actions, shared_fd_, warden::kSharedFd);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  // Its own session: a terminal's ^C or ^Z for the agent does not reach the warden.
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  const std::string agent = std::to_string(getpid());
  const std::string stale = std::to_string(options_.stale_after.count());
  const std::string tick = std::to_string(options_.tick.count());
  const std::string group = std::to_string(group_fd_);
  std::vector<std::string> argv = {executable_, options_.label, agent, group, stale, tick};
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  const int error =
      posix_spawn(&pid, executable_.c_str(), &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    last_error_ = "permission warden: cannot start " + executable_ + ": " +
                  base::errno_text(error) +
                  " (it is built and installed beside the palisade binary; "
                  "enforcement.fanotify.warden names another path)";
    spdlog::error("{}", last_error_);
    pid_ = 0;
    return;
  }
  pid_ = pid;
  spdlog::info(
      "permission warden for the {} guard running (pid {}): it answers in the agent's "
      "place when the agent does not for {} ms",
      options_.label, pid, options_.stale_after.count());
}

void WardenLink::reap_locked() {
  if (pid_ <= 0) return;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return;
  if (shared_->stop.load() == 0) {
    last_error_ =
        "permission warden " + std::to_string(pid_) +
        (WIFSIGNALED(status) ? " killed by signal " + std::to_string(WTERMSIG(status))
                             : " exited with status " + std::to_string(WEXITSTATUS(status)));
    spdlog::error("{}", last_error_);
  }
  pid_ = 0;
  // A warden that died holding the group cannot answer any more: the agent takes it back.
  uint64_t control = shared_->control.load();
  if (warden::owner_of(control) == warden::kOwnerWarden) {
    shared_->control.compare_exchange_strong(control, control + 1);
  }
}

bool WardenLink::read_as_owner(const std::function<void(uint64_t control)>& read) {
  const uint64_t control = shared_->control.load();
  if (warden::owner_of(control) == warden::kOwnerWarden) {
    shared_->handback_wanted.store(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // it hands back at its next tick
    return false;
  }
  shared_->reader_busy_since.store(monotonic_ns());
  read(control);
  shared_->reader_busy_since.store(0);
  return true;
}

WardenTicket WardenLink::hold(int event_fd, uint32_t pid, uint64_t control) {
  int highest = shared_->highest_fd.load();
  while (event_fd > highest && !shared_->highest_fd.compare_exchange_weak(highest, event_fd)) {
  }
  WardenTicket ticket{control, -1};
  // Only the reader takes slots, so a free one stays free until it is stored into.
  for (size_t i = 0; i < warden::kSlots; ++i) {
    const size_t at = (next_slot_ + i) % warden::kSlots;
    warden::Slot& slot = shared_->slots[at];
    if (slot.fd.load() >= 0) continue;
    slot.pid.store(pid);
    slot.fd.store(event_fd);
    next_slot_ = at + 1;
    ticket.slot = static_cast<int>(at);
    break;
  }
  return ticket;
}

bool WardenLink::may_answer(const WardenTicket& ticket) const {
  return shared_->control.load() == ticket.control;
}

void WardenLink::release(const WardenTicket& ticket) {
  if (ticket.slot >= 0) shared_->slots[static_cast<size_t>(ticket.slot)].fd.store(-1);
}

void WardenLink::heartbeat() {
  shared_->heartbeat_ns.store(monotonic_ns());
  // Ticking again after a takeover: ask for the group back (the warden waits for the reader too).
  if (warden::owner_of(shared_->control.load()) == warden::kOwnerWarden) {
    shared_->handback_wanted.store(1);
  }
  std::lock_guard lock(mu_);
  reap_locked();
  if (pid_ == 0 && shared_->stop.load() == 0 &&
      Clock::now() - last_spawn_ >= std::chrono::seconds(1)) {
    ++restarts_;
    spawn();
  }
}

void WardenLink::set_locked_cgroups(const std::vector<uint64_t>& cgroup_ids) {
  std::lock_guard lock(mu_);
  const size_t count = std::min(cgroup_ids.size(), warden::kLockedCgroups);
  if (count < cgroup_ids.size()) {
    spdlog::warn(
        "permission warden: {} locked cgroups, the first {} are refused when the agent "
        "does not answer",
        cgroup_ids.size(), count);
  }
  shared_->locked_sequence.fetch_add(1);
  for (size_t i = 0; i < count; ++i) shared_->locked[i].store(cgroup_ids[i]);
  shared_->locked_count.store(static_cast<uint32_t>(count));
  shared_->locked_sequence.fetch_add(1);
}

void WardenLink::end_orphans() const {
  end_orphaned_wardens(options_.label);
}

void end_orphaned_wardens(const std::string& label) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<uint32_t>(std::stoul(name));
    const std::vector<std::string> argv = command_line(pid);
    if (argv.size() != 6 || fs::path(argv[0]).filename() != "palisade-warden" || argv[1] != label) {
      continue;
    }
    const auto stat = base::parse_proc_stat(base::read_proc_file(pid, "stat", 4096));
    if (!stat || std::to_string(stat->ppid) == argv[2]) continue;  // its agent still runs
    spdlog::warn("ending the permission warden {} left by agent {}, which is gone", pid, argv[2]);
    kill(static_cast<pid_t>(pid), SIGTERM);
  }
}

WardenStats WardenLink::stats() const {
  std::lock_guard lock(mu_);
  WardenStats out;
  out.running = pid_ > 0;
  out.pid = pid_;
  out.executable = executable_;
  out.takeovers = shared_->takeovers.load();
  out.handbacks = shared_->handbacks.load();
  out.answering_now = warden::owner_of(shared_->control.load()) == warden::kOwnerWarden;
  out.answered_allow = shared_->answered_allow.load();
  out.answered_deny = shared_->answered_deny.load();
  out.answered_unattributed = shared_->answered_unattributed.load();
  out.restarts = restarts_;
  out.longest_takeover_ms = shared_->longest_takeover_ns.load() / 1'000'000;
  out.last_error = last_error_;
  return out;
}

}  // namespace palisade::agent

#include "inspect/appliance_watchdog.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <memory>

#include "palisade/base/unique_fd.h"

namespace palisade::hypervisor::inspect {
namespace {

constexpr auto kRetryInterval = std::chrono::milliseconds(100);
constexpr size_t kMaxCmdline = size_t{256} * 1024;  // qemu's is a few KiB

std::string read_cmdline(int proc_dir_fd) {
  base::UniqueFd fd(openat(proc_dir_fd, "cmdline", O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  std::string out;
  char buffer[8192];
  while (out.size() < kMaxCmdline) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

bool all_digits(const char* name) {
  if (*name == '\0') return false;
  for (const char* p = name; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return false;
  }
  return true;
}

// Through syscall(2): glibc 2.36's <sys/pidfd.h> declares these without C linkage.
int open_pidfd(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
}

bool kill_pidfd(int pidfd) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0U) == 0;
}

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

}  // namespace

size_t kill_processes_naming(const std::string& marker) {
  std::unique_ptr<DIR, DirCloser> proc(opendir("/proc"));
  if (!proc) return 0;
  const pid_t self = getpid();
  size_t killed = 0;
  while (const dirent* entry = readdir(proc.get())) {
    if (!all_digits(entry->d_name)) continue;
    const pid_t pid = static_cast<pid_t>(std::strtol(entry->d_name, nullptr, 10));
    if (pid == self) continue;
    base::UniqueFd proc_dir(
        openat(dirfd(proc.get()), entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!proc_dir || read_cmdline(proc_dir.get()).find(marker) == std::string::npos) continue;
    // Pin the process, then make sure the pinned one is still the appliance.
    base::UniqueFd pidfd(open_pidfd(pid));
    if (!pidfd || read_cmdline(proc_dir.get()).find(marker) == std::string::npos) continue;
    if (kill_pidfd(pidfd.get())) ++killed;
  }
  return killed;
}

ApplianceWatchdog::ApplianceWatchdog(std::chrono::steady_clock::time_point deadline,
                                     std::string marker)
    : deadline_(deadline),
      marker_(std::move(marker)),
      thread_([this](const std::stop_token& stop) { run(stop); }) {}

ApplianceWatchdog::~ApplianceWatchdog() {
  thread_.request_stop();
  wake_.notify_all();
}

void ApplianceWatchdog::run(const std::stop_token& stop) {
  const auto never = [] { return false; };
  std::unique_lock lock(mutex_);
  wake_.wait_until(lock, stop, deadline_, never);
  while (!stop.stop_requested()) {
    fired_ = true;
    killed_ += kill_processes_naming(marker_);
    wake_.wait_for(lock, stop, kRetryInterval, never);
  }
}

}  // namespace palisade::hypervisor::inspect

// Runs the fanotify exec guard against real execve calls on a tmpfs in a private mount namespace:
// only files on that tmpfs wait for these guards, so a fail-closed test cannot deny anything else
// on the host. Needs root (CAP_SYS_ADMIN); CI runs as root, so these must not skip there.
#include "enforce/fanotify_guard.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "palisade/base/cgroup.h"

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kDeniedExit = 126;  // what the child exits with when execv fails with EPERM
constexpr int kTimedOut = -1;

// Mounts made by the tests vanish with the test process, even when it crashes.
class PrivateMountNamespace : public ::testing::Environment {
 public:
  void SetUp() override {
    if (geteuid() != 0) return;
    ASSERT_EQ(unshare(CLONE_NEWNS), 0) << std::strerror(errno);
    ASSERT_EQ(mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << std::strerror(errno);
  }
};
[[maybe_unused]] const auto* const private_mounts =
    ::testing::AddGlobalTestEnvironment(new PrivateMountNamespace);

std::string read_link(const std::string& path) {
  std::error_code ec;
  return fs::read_symlink(path, ec).string();
}

struct stat stat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st;
}

int64_t ctime_ns(const std::string& path) {
  const struct stat st = stat_of(path);
  return static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
}

// A child that execs path (after joining the cgroup whose cgroup.procs is given); only
// async-signal-safe calls after fork, since the guard's threads run in this process.
pid_t spawn(const std::string& path, const std::string& cgroup_procs = {}) {
  char* const argv[] = {const_cast<char*>(path.c_str()), nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    if (!cgroup_procs.empty()) {
      const int fd = open(cgroup_procs.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0", 1) != 1) _exit(125);
      close(fd);
    }
    execv(path.c_str(), argv);
    _exit(errno == EPERM ? kDeniedExit : 127);
  }
  return pid;
}

// The exit code, or kTimedOut (the child is killed) so that a guard bug fails instead of hanging.
int wait_exit(pid_t pid, std::chrono::milliseconds limit = 10s) {
  const auto deadline = Clock::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (done < 0) return -2;
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return kTimedOut;
    }
    std::this_thread::sleep_for(2ms);
  }
}

// Polls for a condition a guard thread makes true after the exec it answered has gone on.
bool eventually(const std::function<bool()>& condition) {
  for (const auto deadline = Clock::now() + 5s; Clock::now() < deadline;) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

struct ChildRun {
  pid_t pid = 0;
  int exit_code = kTimedOut;
  std::chrono::milliseconds elapsed{};
};

ChildRun run(const std::string& path, const std::string& cgroup_procs = {}) {
  const auto start = Clock::now();
  ChildRun result;
  result.pid = spawn(path, cgroup_procs);
  result.exit_code = wait_exit(result.pid);
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return result;
}

// The cgroup2 mount found another way than the guard does (statfs, not mountinfo).
std::string cgroup2_mount_by_statfs() {
  for (const char* candidate : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    struct statfs sfs {};
    if (statfs(candidate, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) return candidate;
  }
  return {};
}

std::string own_cgroup2_path() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  }
  return {};
}

struct Report {
  ExecRequest request;
  ExecDecision decision;
  bool timed_out = false;
};

// The guard answers first and reports after, so a child can exit before its report arrives.
class Recorder {
 public:
  void add(const ExecRequest& request, const ExecDecision& decision, bool timed_out) {
    std::lock_guard lock(mutex_);
    reports_.push_back({request, decision, timed_out});
    cv_.notify_all();
  }
  // The reports once there are at least count of them (or after a bounded wait).
  std::vector<Report> reports(size_t count) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, 5s, [&] { return reports_.size() >= count; });
    return reports_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Report> reports_;
};

// Holds deciders until opened; bounded, so a test bug cannot hang the suite.
class Gate {
 public:
  void pass() {
    std::unique_lock lock(mutex_);
    ++entered_;
    cv_.notify_all();
    cv_.wait_for(lock, 20s, [this] { return open_; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  bool wait_entered(int count) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, 5s, [&] { return entered_ >= count; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

class FanotifyGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root: fanotify permission events need CAP_SYS_ADMIN";
    }
    std::string tmpl = (fs::temp_directory_path() / "palisade-guard-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    ASSERT_EQ(mount("palisade-guard", dir_.c_str(), "tmpfs", 0, "mode=0755,size=16m"), 0)
        << std::strerror(errno);
    mounted_ = true;
    allowed_ = dir_ + "/allowed";
    denied_ = dir_ + "/denied";
    for (const auto& path : {allowed_, denied_}) {
      fs::copy_file("/bin/true", path);
      fs::permissions(path, fs::perms(0755));
    }
  }

  void TearDown() override {
    gate_.open();
    guard_.reset();
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    if (!dir_.empty()) rmdir(dir_.c_str());
  }

  void start(FanotifyGuardOptions options, ExecDecider decider) {
    options.mounts = {dir_};
    guard_ = FanotifyExecGuard::start(
        options, std::move(decider),
        [this](const ExecRequest& r, const ExecDecision& d, bool t) { recorder_.add(r, d, t); });
    // Failing closed refuses the locked workloads only: here, the test's own children.
    guard_->set_locked_cgroups({base::cgroup_id_of_process(static_cast<uint32_t>(getpid()))});
  }

  // Denies the file named "denied", reported; allows the rest, unreported. Counts its calls.
  ExecDecider allowlist() {
    return [this](const ExecRequest& request) {
      ++decider_calls_;
      {
        std::lock_guard lock(seen_mutex_);
        seen_.push_back(request);
        char magic[4] = {};
        elf_magic_read_ = pread(request.fd, magic, sizeof magic, 0) == 4 && std::memcmp(magic,
                                                                                        "\x7f"
                                                                                        "ELF",
                                                                                        4) == 0;
      }
      ExecDecision decision;
      if (fs::path(request.path).filename() == "denied") {
        decision.verdict = ExecVerdict::kDeny;
        decision.report = true;
        decision.reason = "not on the allowlist";
      }
      return decision;
    };
  }

  // Waits at the gate, then allows.
  ExecDecider stalled() {
    return [this](const ExecRequest&) {
      ++decider_calls_;
      gate_.pass();
      ++decider_returns_;
      return ExecDecision{};
    };
  }

  FanotifyGuardOptions quick_options() {
    FanotifyGuardOptions options;
    options.decision_timeout = 5s;  // a loaded CI machine must not turn decisions into timeouts
    return options;
  }

  void expect_answered_on_timeout(ExecVerdict on_timeout);

  std::string dir_;
  bool mounted_ = false;
  std::string allowed_;
  std::string denied_;
  std::atomic<int> decider_calls_{0};
  std::atomic<int> decider_returns_{0};
  std::mutex seen_mutex_;
  std::vector<ExecRequest> seen_;
  bool elf_magic_read_ = false;
  Recorder recorder_;
  Gate gate_;
  // Last: destroyed first, while everything its decider and sink touch still exists.
  std::unique_ptr<FanotifyExecGuard> guard_;
};

TEST_F(FanotifyGuardTest, AllowsListedExecAndDeniesOthersWithEperm) {
  start(quick_options(), allowlist());
  EXPECT_EQ(run(allowed_).exit_code, 0);
  const ChildRun denied = run(denied_);
  EXPECT_EQ(denied.exit_code, kDeniedExit);

  const auto stats = guard_->stats();
  EXPECT_EQ(stats.requests, 2u);
  EXPECT_EQ(stats.allowed, 1u);
  EXPECT_EQ(stats.denied, 1u);
  EXPECT_EQ(stats.cache_misses, 2u);
  EXPECT_EQ(stats.timeouts, 0u);
  EXPECT_EQ(stats.errors, 0u);
  EXPECT_EQ(stats.marked_filesystems, 1u);
  EXPECT_TRUE(elf_magic_read_) << "the decider could not read the file through request.fd";

  const auto reports = recorder_.reports(1);
  ASSERT_EQ(reports.size(), 1u) << "only the reported denial reaches the sink";
  const Report& report = reports[0];
  EXPECT_FALSE(report.timed_out);
  EXPECT_EQ(report.decision.verdict, ExecVerdict::kDeny);
  EXPECT_EQ(report.decision.reason, "not on the allowlist");
  EXPECT_EQ(report.request.path, denied_);
  EXPECT_EQ(report.request.pid, static_cast<uint32_t>(denied.pid));
  EXPECT_EQ(report.request.uid, 0u);
  EXPECT_EQ(report.request.parent_exe, read_link("/proc/self/exe"));
  EXPECT_EQ(report.request.cgroup_id, base::cgroup_id_of_process(static_cast<uint32_t>(getpid())));
  EXPECT_NE(report.request.cgroup_id, 0u);
  const struct stat st = stat_of(denied_);
  EXPECT_EQ(report.request.dev, st.st_dev);
  EXPECT_EQ(report.request.ino, st.st_ino);
  EXPECT_EQ(report.request.ctime_ns, ctime_ns(denied_));
  EXPECT_EQ(report.request.fd, -1) << "the event fd is only the decider's to use";
}

TEST_F(FanotifyGuardTest, AuditModeReportsWouldDenyButAllows) {
  start(quick_options(), [](const ExecRequest&) {
    ExecDecision decision;
    decision.report = true;
    decision.reason = "would deny: not on the allowlist";
    return decision;
  });
  EXPECT_EQ(run(denied_).exit_code, 0);
  const auto reports = recorder_.reports(1);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].decision.verdict, ExecVerdict::kAllow);
  EXPECT_EQ(reports[0].request.path, denied_);
}

TEST_F(FanotifyGuardTest, SecondExecOfSameFileIsCacheHit) {
  start(quick_options(), allowlist());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(run(allowed_).exit_code, 0);
    EXPECT_EQ(run(denied_).exit_code, kDeniedExit);
  }
  const auto stats = guard_->stats();
  EXPECT_EQ(decider_calls_, 2);
  EXPECT_EQ(stats.cache_misses, 2u);
  EXPECT_EQ(stats.cache_hits, 2u);
  EXPECT_EQ(stats.cache_size, 2u);
  EXPECT_EQ(stats.denied, 2u);
  EXPECT_EQ(recorder_.reports(2).size(), 2u) << "a cached denial is reported every time";
}

TEST_F(FanotifyGuardTest, NewFileVersionIsDecidedAgain) {
  start(quick_options(), allowlist());
  EXPECT_EQ(run(allowed_).exit_code, 0);
  const int64_t before = ctime_ns(allowed_);
  std::ofstream(allowed_, std::ios::app) << '\0';  // trailing bytes after an ELF image are inert
  ASSERT_NE(ctime_ns(allowed_), before) << "the write did not give the file a new ctime";
  EXPECT_EQ(run(allowed_).exit_code, 0);
  EXPECT_EQ(decider_calls_, 2);
  const auto stats = guard_->stats();
  EXPECT_EQ(stats.cache_hits, 0u);
  EXPECT_EQ(stats.cache_misses, 2u);
}

TEST_F(FanotifyGuardTest, InvalidateForgetsEveryVerdictOfTheFile) {
  const std::string mount = cgroup2_mount_by_statfs();
  ASSERT_FALSE(mount.empty()) << "no cgroup2 mount";
  // A second cgroup gives the same file a second cache entry: the key holds the cgroup.
  const std::string cgroup = mount + "/palisade-guard-test-" + std::to_string(getpid());
  ASSERT_EQ(mkdir(cgroup.c_str(), 0755), 0) << cgroup << ": " << std::strerror(errno);
  start(quick_options(), allowlist());

  EXPECT_EQ(run(allowed_).exit_code, 0);
  EXPECT_EQ(run(allowed_, cgroup + "/cgroup.procs").exit_code, 0);
  EXPECT_EQ(run(denied_).exit_code, kDeniedExit);
  EXPECT_EQ(guard_->stats().cache_size, 3u);
  {
    std::lock_guard lock(seen_mutex_);
    ASSERT_EQ(seen_.size(), 3u);
    EXPECT_EQ(seen_[1].cgroup_id, stat_of(cgroup).st_ino) << "the moved child's cgroup";
  }

  const struct stat st = stat_of(allowed_);
  guard_->invalidate(st.st_dev, st.st_ino);
  EXPECT_EQ(guard_->stats().cache_size, 1u) << "both cgroups' verdicts on the file are gone";
  EXPECT_EQ(run(allowed_).exit_code, 0);
  EXPECT_EQ(run(denied_).exit_code, kDeniedExit);
  EXPECT_EQ(decider_calls_, 4) << "asked again for the invalidated file only";
  EXPECT_EQ(guard_->stats().cache_hits, 1u);
  EXPECT_EQ(rmdir(cgroup.c_str()), 0) << std::strerror(errno);
}

TEST_F(FanotifyGuardTest, ClearCacheAsksDeciderAgain) {
  start(quick_options(), allowlist());
  EXPECT_EQ(run(allowed_).exit_code, 0);
  EXPECT_EQ(run(denied_).exit_code, kDeniedExit);
  guard_->clear_cache();
  EXPECT_EQ(guard_->stats().cache_size, 0u);
  EXPECT_EQ(run(allowed_).exit_code, 0);
  EXPECT_EQ(run(denied_).exit_code, kDeniedExit);
  EXPECT_EQ(decider_calls_, 4);
  EXPECT_EQ(guard_->stats().cache_hits, 0u);
}

TEST_F(FanotifyGuardTest, CacheStaysWithinItsBound) {
  FanotifyGuardOptions options = quick_options();
  options.cache_entries = 1;
  start(options, allowlist());
  EXPECT_EQ(run(allowed_).exit_code, 0);
  EXPECT_EQ(run(denied_).exit_code, kDeniedExit);
  EXPECT_EQ(run(allowed_).exit_code, 0);
  const auto stats = guard_->stats();
  EXPECT_EQ(stats.cache_size, 1u);
  EXPECT_EQ(stats.cache_evictions, 2u);
  EXPECT_EQ(decider_calls_, 3);
}

void FanotifyGuardTest::expect_answered_on_timeout(ExecVerdict on_timeout) {
  FanotifyGuardOptions options;
  options.decision_timeout = 200ms;
  options.on_timeout = on_timeout;
  start(options, stalled());
  const ChildRun first = run(allowed_);
  EXPECT_EQ(first.exit_code, on_timeout == ExecVerdict::kAllow ? 0 : kDeniedExit);
  EXPECT_GE(first.elapsed, 150ms) << "answered before the decider had its time";
  EXPECT_LT(first.elapsed, 3s) << "the timeout did not bound the wait";
  auto stats = guard_->stats();
  EXPECT_EQ(stats.timeouts, 1u);
  const auto reports = recorder_.reports(1);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].timed_out);
  EXPECT_EQ(reports[0].decision.verdict, on_timeout);
  EXPECT_EQ(reports[0].request.path, allowed_);

  // The late verdict is not written a second time (that write would fail and count an error)
  // but is cached: the next exec gets it at once.
  gate_.open();
  ASSERT_TRUE(eventually([&] { return guard_->stats().cache_size == 1; }));
  EXPECT_EQ(decider_returns_, 1);
  stats = guard_->stats();
  EXPECT_EQ(stats.errors, 0u);
  EXPECT_EQ(stats.allowed + stats.denied, 1u) << "one response for one event";
  EXPECT_EQ(run(allowed_).exit_code, 0);
  EXPECT_EQ(guard_->stats().cache_hits, 1u);
  EXPECT_EQ(decider_calls_, 1);
}

TEST_F(FanotifyGuardTest, StalledDeciderFailsOpenOnTimeout) {
  expect_answered_on_timeout(ExecVerdict::kAllow);
}

TEST_F(FanotifyGuardTest, StalledDeciderFailsClosedOnTimeout) {
  expect_answered_on_timeout(ExecVerdict::kDeny);
}

TEST_F(FanotifyGuardTest, StalledDeciderDoesNotHoldBackLaterExecs) {
  FanotifyGuardOptions options;
  options.decision_timeout = 300ms;
  options.decider_threads = 1;
  start(options, stalled());
  const auto begin = Clock::now();
  const std::vector<pid_t> children = {spawn(allowed_), spawn(allowed_), spawn(allowed_)};
  for (const pid_t child : children) EXPECT_EQ(wait_exit(child), 0);
  EXPECT_LT(Clock::now() - begin, 3s);
  EXPECT_EQ(guard_->stats().timeouts, 3u);
  EXPECT_EQ(decider_calls_, 1) << "the queued execs were answered without waiting for a decider";
}

TEST_F(FanotifyGuardTest, BeyondMaxPendingIsAnsweredAtOnce) {
  FanotifyGuardOptions options;
  options.decision_timeout = 4s;
  options.on_timeout = ExecVerdict::kDeny;
  options.max_pending = 1;
  options.decider_threads = 1;
  start(options, stalled());
  const pid_t first = spawn(allowed_);
  ASSERT_TRUE(gate_.wait_entered(1)) << "the first exec never reached the decider";

  const ChildRun second = run(denied_);
  EXPECT_EQ(second.exit_code, kDeniedExit) << "answered with on_timeout";
  EXPECT_LT(second.elapsed, 2s) << "waited for the decision timeout instead";
  EXPECT_EQ(guard_->stats().overflow_answers, 1u);
  const auto reports = recorder_.reports(1);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_TRUE(reports[0].timed_out);
  EXPECT_EQ(reports[0].request.path, denied_);

  gate_.open();
  EXPECT_EQ(wait_exit(first), 0);
  EXPECT_EQ(guard_->stats().timeouts, 0u);
}

TEST_F(FanotifyGuardTest, DeciderExceptionIsAnsweredWithOnTimeout) {
  FanotifyGuardOptions options = quick_options();
  options.on_timeout = ExecVerdict::kDeny;
  start(options, [](const ExecRequest&) -> ExecDecision { throw std::runtime_error("no policy"); });
  EXPECT_EQ(run(allowed_).exit_code, kDeniedExit);
  const auto reports = recorder_.reports(1);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].decision.verdict, ExecVerdict::kDeny);
  const auto stats = guard_->stats();
  EXPECT_EQ(stats.errors, 1u);
  EXPECT_EQ(stats.cache_size, 0u) << "a failure is not a verdict to remember";
}

TEST_F(FanotifyGuardTest, OwnExecsAreAllowedWithoutTheDecider) {
  // In a child, so that the exec replaces the child and not the test. The child is forked while
  // this process runs no guard threads, so it may start its own.
  const pid_t child = fork();
  if (child == 0) {
    FanotifyGuardOptions options;
    options.mounts = {dir_};
    options.on_timeout = ExecVerdict::kDeny;
    std::unique_ptr<FanotifyExecGuard> guard;
    try {
      guard = FanotifyExecGuard::start(
          options,
          [](const ExecRequest&) {
            ExecDecision deny;
            deny.verdict = ExecVerdict::kDeny;
            return deny;
          },
          nullptr);
    } catch (const std::exception&) {
      _exit(3);
    }
    char* const argv[] = {const_cast<char*>(allowed_.c_str()), nullptr};
    execv(allowed_.c_str(), argv);
    _exit(errno == EPERM ? kDeniedExit : 127);
  }
  EXPECT_EQ(wait_exit(child), 0) << "the guard denied (126) or could not start (3) in the child";
}

TEST_F(FanotifyGuardTest, MarkSaysWhatFailed) {
  FanotifyGuardOptions options;
  guard_ = FanotifyExecGuard::start(options, allowlist(), nullptr);
  std::string error;
  EXPECT_FALSE(guard_->mark(dir_ + "/missing", error));
  EXPECT_NE(error.find(dir_ + "/missing"), std::string::npos) << error;
  EXPECT_NE(error.find(std::strerror(ENOENT)), std::string::npos) << error;
  EXPECT_EQ(guard_->stats().marked_filesystems, 0u);

  EXPECT_TRUE(guard_->mark(dir_, error)) << error;
  EXPECT_EQ(guard_->stats().marked_filesystems, 1u);
  EXPECT_EQ(run(denied_).exit_code, kDeniedExit) << "a mark made later guards execs too";

  options.mounts = {dir_ + "/missing"};
  EXPECT_THROW(FanotifyExecGuard::start(options, allowlist(), nullptr), std::runtime_error);
}

TEST_F(FanotifyGuardTest, StartWithoutCapSysAdminSaysWhatItNeeds) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  if (child == 0) {
    close(pipe_fds[0]);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (syscall(SYS_capget, &header, data) != 0) _exit(2);
    data[0].effective &= ~(1U << CAP_SYS_ADMIN);
    if (syscall(SYS_capset, &header, data) != 0) _exit(2);
    std::string message = "no exception";
    try {
      FanotifyExecGuard::start(
          {}, [](const ExecRequest&) { return ExecDecision{}; }, nullptr);
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    if (write(pipe_fds[1], message.data(), message.size()) < 0) _exit(2);
    _exit(0);
  }
  close(pipe_fds[1]);
  std::string message;
  char buffer[512];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
    message.append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  ASSERT_EQ(wait_exit(child), 0);
  EXPECT_NE(message.find("fanotify_init"), std::string::npos) << message;
  EXPECT_NE(message.find(std::strerror(EPERM)), std::string::npos) << message;
  EXPECT_NE(message.find("CAP_SYS_ADMIN"), std::string::npos) << message;
}

// ---- No state of the guard's process stalls the host: its warden answers in its place.

constexpr auto kStallTimeout = 250ms;
// What a loaded two-core CI machine may add to the timeout before an exec is answered.
constexpr auto kSchedulingSlack = 750ms;

// A guard in a child process, so that a test can stop or kill the process that owns it. It
// denies the file named "denied" and allows the rest; failing closed, `locked` are the locked
// cgroups.
class GuardProcess {
 public:
  GuardProcess(const std::string& dir, ExecVerdict on_timeout, uint64_t locked) {
    int ready[2];
    int commands[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(commands, O_CLOEXEC) != 0) return;
    pid = fork();
    if (pid == 0) {
      close(ready[0]);
      close(commands[1]);
      serve(dir, on_timeout, locked, ready[1], commands[0]);
    }
    close(ready[1]);
    close(commands[0]);
    replies_ = ready[0];
    commands_ = commands[1];
    const std::string line = read_line();
    warden = line.empty() ? 0 : std::stoi(line);
  }

  ~GuardProcess() {
    if (commands_ >= 0) close(commands_);
    if (replies_ >= 0) close(replies_);
    if (pid > 0) {
      kill(pid, SIGCONT);
      wait_exit(pid);
    }
  }

  // "takeovers handbacks allow deny unattributed answered_by_warden requests"
  std::vector<uint64_t> stats() {
    if (write(commands_, "s", 1) != 1) return {};
    std::istringstream in(read_line());
    std::vector<uint64_t> out;
    for (uint64_t value = 0; in >> value;) out.push_back(value);
    return out;
  }

  pid_t pid = -1;
  pid_t warden = 0;  // the guard's warden, as the guard reports it once it runs

 private:
  [[noreturn]] static void serve(const std::string& dir, ExecVerdict on_timeout, uint64_t locked,
                                 int reply, int commands) {
    FanotifyGuardOptions options;
    options.mounts = {dir};
    options.decision_timeout = kStallTimeout;
    options.on_timeout = on_timeout;
    std::unique_ptr<FanotifyExecGuard> guard;
    try {
      guard = FanotifyExecGuard::start(
          options,
          [](const ExecRequest& request) {
            ExecDecision decision;
            if (fs::path(request.path).filename() == "denied") {
              decision.verdict = ExecVerdict::kDeny;
            }
            return decision;
          },
          nullptr);
      guard->set_locked_cgroups({locked});
    } catch (const std::exception&) {
      _exit(3);
    }
    const std::string hello = std::to_string(guard->stats().warden.pid) + "\n";
    if (write(reply, hello.data(), hello.size()) < 0) _exit(4);
    for (char command = 0; read(commands, &command, 1) == 1;) {
      const FanotifyGuardStats s = guard->stats();
      const std::string line =
          std::to_string(s.warden.takeovers) + " " + std::to_string(s.warden.handbacks) + " " +
          std::to_string(s.warden.answered_allow) + " " + std::to_string(s.warden.answered_deny) +
          " " + std::to_string(s.warden.answered_unattributed) + " " +
          std::to_string(s.answered_by_warden) + " " + std::to_string(s.requests) + "\n";
      if (write(reply, line.data(), line.size()) < 0) break;
    }
    guard.reset();
    _exit(0);
  }

  std::string read_line() {
    std::string line;
    char c = 0;
    while (read(replies_, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
  }

  int replies_ = -1;
  int commands_ = -1;
};

// A throwaway cgroup v2 directory below the test's own: the "locked workload".
class LockedCgroup {
 public:
  LockedCgroup() {
    const std::string mount = base::cgroup2_mount();
    if (mount.empty()) return;
    path = mount + "/palisade-guard-test-" + std::to_string(getpid());
    if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) path.clear();
    if (!path.empty()) id = stat_of(path).st_ino;
  }
  ~LockedCgroup() {
    if (!path.empty()) rmdir(path.c_str());
  }
  std::string procs() const { return path + "/cgroup.procs"; }
  std::string path;
  uint64_t id = 0;
};

// Execs `path` `count` times one after another; every exit code, and the longest wait for one.
struct ExecLoop {
  std::vector<int> exit_codes;
  std::chrono::milliseconds longest{};
};
ExecLoop exec_loop(const std::string& path, int count, const std::string& cgroup_procs = {}) {
  ExecLoop loop;
  for (int i = 0; i < count; ++i) {
    const ChildRun child = run(path, cgroup_procs);
    loop.exit_codes.push_back(child.exit_code);
    loop.longest = std::max(loop.longest, child.elapsed);
  }
  return loop;
}

// Orphans (a killed guard's warden) come to this process, which can then see them exit.
class Subreaper {
 public:
  Subreaper() { EXPECT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0) << std::strerror(errno); }
  ~Subreaper() { prctl(PR_SET_CHILD_SUBREAPER, 0); }
};

bool all_equal(const std::vector<int>& codes, int expected) {
  return !codes.empty() &&
         std::all_of(codes.begin(), codes.end(), [&](int code) { return code == expected; });
}

TEST_F(FanotifyGuardTest, StoppedGuardProcessIsAnsweredByItsWardenFailingOpen) {
  GuardProcess guard(dir_, ExecVerdict::kAllow, 0);
  ASSERT_GT(guard.warden, 0) << "the guard did not start, or without its warden";
  ASSERT_EQ(run(denied_).exit_code, kDeniedExit) << "the guard decides while it runs";

  ASSERT_EQ(kill(guard.pid, SIGSTOP), 0);
  const ExecLoop allowed = exec_loop(allowed_, 10);
  const ExecLoop denied = exec_loop(denied_, 10);
  EXPECT_TRUE(all_equal(allowed.exit_codes, 0));
  EXPECT_TRUE(all_equal(denied.exit_codes, 0)) << "failing open, the warden allows";
  EXPECT_LT(std::max(allowed.longest, denied.longest), kStallTimeout + kSchedulingSlack);

  ASSERT_EQ(kill(guard.pid, SIGCONT), 0);
  EXPECT_TRUE(eventually([&] { return run(denied_).exit_code == kDeniedExit; }))
      << "the guard never took its group back";
  const std::vector<uint64_t> stats = guard.stats();
  ASSERT_EQ(stats.size(), 7u);
  EXPECT_GE(stats[0], 1u) << "takeovers";
  EXPECT_GE(stats[1], 1u) << "handbacks";
  EXPECT_GE(stats[2] + stats[4], 20u) << "every exec during the stop was answered by the warden";
  EXPECT_EQ(stats[3], 0u) << "failing open, the warden refuses nothing";
}

TEST_F(FanotifyGuardTest, StoppedGuardProcessFailingClosedRefusesOnlyTheLockedCgroup) {
  const LockedCgroup locked;
  ASSERT_NE(locked.id, 0u) << "no cgroup v2 hierarchy to make a locked workload in";
  GuardProcess guard(dir_, ExecVerdict::kDeny, locked.id);
  ASSERT_GT(guard.warden, 0);
  ASSERT_EQ(run(allowed_, locked.procs()).exit_code, 0) << "the guard decides while it runs";

  ASSERT_EQ(kill(guard.pid, SIGSTOP), 0);
  const ExecLoop host = exec_loop(allowed_, 10);
  const ExecLoop workload = exec_loop(allowed_, 10, locked.procs());
  EXPECT_TRUE(all_equal(host.exit_codes, 0)) << "the host is never refused for a slow guard";
  EXPECT_TRUE(all_equal(workload.exit_codes, kDeniedExit))
      << "failing closed, nothing runs in the locked workload while nobody can judge it";
  EXPECT_LT(std::max(host.longest, workload.longest), kStallTimeout + kSchedulingSlack);

  ASSERT_EQ(kill(guard.pid, SIGCONT), 0);
  EXPECT_TRUE(eventually([&] { return run(allowed_, locked.procs()).exit_code == 0; }));
  const std::vector<uint64_t> stats = guard.stats();
  ASSERT_EQ(stats.size(), 7u);
  EXPECT_GE(stats[3], 10u) << "the warden's refusals are counted";
}

TEST_F(FanotifyGuardTest, KilledGuardProcessLeavesNoExecWaiting) {
  const Subreaper subreaper;
  auto guard = std::make_unique<GuardProcess>(dir_, ExecVerdict::kAllow, 0);
  ASSERT_GT(guard->warden, 0);
  // Stopped first, with an exec held, then killed: the held exec must not outlive it either.
  ASSERT_EQ(kill(guard->pid, SIGSTOP), 0);
  const pid_t held = spawn(denied_);
  ASSERT_EQ(kill(guard->pid, SIGKILL), 0);
  EXPECT_EQ(wait_exit(held, kStallTimeout + kSchedulingSlack), 0);
  const ExecLoop after = exec_loop(denied_, 10);
  EXPECT_TRUE(all_equal(after.exit_codes, 0)) << "failing open, with no guard nothing is refused";
  EXPECT_LT(after.longest, kStallTimeout + kSchedulingSlack);
  EXPECT_EQ(wait_exit(guard->warden, 5s), 0) << "failing open, the warden leaves with its agent";
}

TEST_F(FanotifyGuardTest, KilledGuardFailingClosedLeavesAWardenUntilANewGuardRuns) {
  const LockedCgroup locked;
  ASSERT_NE(locked.id, 0u);
  const Subreaper subreaper;
  auto guard = std::make_unique<GuardProcess>(dir_, ExecVerdict::kDeny, locked.id);
  const pid_t warden = guard->warden;
  ASSERT_GT(warden, 0);
  ASSERT_EQ(kill(guard->pid, SIGKILL), 0);
  EXPECT_EQ(wait_exit(guard->pid), 128 + SIGKILL);
  guard->pid = -1;

  const ExecLoop host = exec_loop(allowed_, 5);
  const ExecLoop workload = exec_loop(allowed_, 5, locked.procs());
  EXPECT_TRUE(all_equal(host.exit_codes, 0));
  EXPECT_TRUE(all_equal(workload.exit_codes, kDeniedExit)) << "the orphaned warden fails closed";
  EXPECT_LT(std::max(host.longest, workload.longest), kStallTimeout + kSchedulingSlack);

  FanotifyGuardOptions options = quick_options();
  options.on_timeout = ExecVerdict::kDeny;
  start(options, allowlist());  // marks its filesystem, then ends the orphan
  EXPECT_EQ(wait_exit(warden, 5s), 128 + SIGTERM) << "the new guard did not end the orphan";
  EXPECT_EQ(run(allowed_, locked.procs()).exit_code, 0) << "the new guard decides";
}

TEST_F(FanotifyGuardTest, WedgedWatchdogIsAnsweredByTheWarden) {
  // Decisions never come, and the sink the watchdog reports its first timeout to never returns:
  // nothing in this process answers any more, as in a deadlocked agent.
  Gate sink_gate;
  FanotifyGuardOptions options;
  options.decision_timeout = kStallTimeout;
  options.mounts = {dir_};
  guard_ = FanotifyExecGuard::start(
      options, stalled(), [&](const ExecRequest&, const ExecDecision&, bool) { sink_gate.pass(); });
  const ChildRun first = run(allowed_);
  EXPECT_EQ(first.exit_code, 0);
  ASSERT_TRUE(sink_gate.wait_entered(1)) << "the watchdog never reported the timeout";
  const ExecLoop wedged = exec_loop(allowed_, 10);
  EXPECT_TRUE(all_equal(wedged.exit_codes, 0));
  EXPECT_LT(wedged.longest, kStallTimeout + kSchedulingSlack);
  EXPECT_GE(guard_->stats().warden.takeovers, 1u);
  sink_gate.open();
  gate_.open();
  EXPECT_TRUE(eventually([&] { return guard_->stats().warden.handbacks >= 1; }))
      << "takeovers " << guard_->stats().warden.takeovers << ", answering now "
      << guard_->stats().warden.answering_now;
}

// Needs no root: reading one's own cgroup is unprivileged.
TEST(CgroupIdOf, OwnProcessIsInodeOfItsCgroup2Directory) {
  const std::string mount = cgroup2_mount_by_statfs();
  const std::string path = own_cgroup2_path();
  if (mount.empty() || path.empty()) GTEST_SKIP() << "no cgroup v2 hierarchy on this host";
  const uint64_t expected = stat_of(mount + path).st_ino;
  EXPECT_NE(expected, 0u);
  EXPECT_EQ(base::cgroup_id_of_process(static_cast<uint32_t>(getpid())), expected);
  EXPECT_EQ(base::cgroup_id_of_process(0x7ffffff0U), 0u) << "no such process";
}

}  // namespace
}  // namespace palisade::agent

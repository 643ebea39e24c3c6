// Runs the real eBPF sensor against real programs and asserts the exact events, with ancestry.
// Needs root (CAP_BPF, CAP_PERFMON, tracefs); CI runs as root, so these must not skip there.
#include "palisade/agent/sensor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent_harness.h"
#include "palisade/agent/pipeline.h"
#include "palisade/base/clock.h"
#include "palisade/ocsf/formatter.h"

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using palisade::testing::exec_argv;

class Recorder : public runtime::EventSink {
 public:
  void consume(const Event& event, std::string_view) override {
    std::lock_guard lock(mutex_);
    events_.push_back(event);
  }
  std::vector<Event> matching(const std::function<bool(const Event&)>& pred) {
    std::lock_guard lock(mutex_);
    std::vector<Event> out;
    for (const auto& e : events_) {
      if (pred(e)) out.push_back(e);
    }
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<Event> events_;
};

// One sensor for the whole suite: loading ~80 programs takes seconds.
class SensorEnvironment {
 public:
  static SensorEnvironment& get() {
    static SensorEnvironment env;
    return env;
  }
  Recorder recorder;
  ProcessTable table;
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<LiveSensor> sensor;
  std::atomic<bool> stop{false};
  std::thread poller;
  std::string error;
  std::mutex stats_mutex;

  PipelineStats stats() {
    std::lock_guard lock(stats_mutex);
    return pipeline->stats();
  }

 private:
  SensorEnvironment() {
    if (geteuid() != 0) {
      error = "needs root";
      return;
    }
    try {
      SensorOptions options;
      options.file_rules.exclude = {"/proc/", "/sys/", "/dev/"};
      sensor = LiveSensor::start(options);
    } catch (const std::exception& e) {
      error = e.what();
      return;
    }
    pipeline = std::make_unique<Pipeline>(table, std::vector<runtime::EventSink*>{&recorder});
    pipeline->set_path_rules(PathRules{.exclude = {"/proc/", "/sys/", "/dev/"}, .include = {}});
    pipeline->set_wall_offset_ns(base::current_wall_offset_ns());
    poller = std::thread([this] {
      RecordCallback deliver = [this](RecordView r) {
        std::lock_guard lock(stats_mutex);
        pipeline->handle(r);
      };
      while (!stop) sensor->poll(50ms, deliver);
    });
  }
  ~SensorEnvironment() {
    stop = true;
    if (poller.joinable()) poller.join();
  }
};

class SensorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& env = SensorEnvironment::get();
    if (geteuid() != 0) GTEST_SKIP() << "the live sensor needs root (CI runs as root)";
    ASSERT_TRUE(env.error.empty()) << env.error;
    dir = fs::path("/tmp") / ("palisade-it-" + std::to_string(getpid()) + "-" +
                              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  Recorder& recorder() { return SensorEnvironment::get().recorder; }

  // Waits until at least `count` events match.
  std::vector<Event> wait_for(const std::function<bool(const Event&)>& pred, size_t count = 1,
                              std::chrono::milliseconds timeout = 15s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<Event> found;
    while (std::chrono::steady_clock::now() < deadline) {
      found = recorder().matching(pred);
      if (found.size() >= count) return found;
      std::this_thread::sleep_for(20ms);
    }
    return found;
  }

  // Runs argv (no shell unless argv says so) and returns the child's pid after it exits.
  static pid_t run(const std::vector<std::string>& argv, int* status_out = nullptr) {
    pid_t pid = fork();
    if (pid == 0) exec_argv(argv);
    int status = 0;
    waitpid(pid, &status, 0);
    if (status_out != nullptr) *status_out = status;
    return pid;
  }

  // Runs fn in a forked child (the sensor ignores the test process itself, which hosts it).
  static pid_t in_child(const std::function<int()>& fn, int* status_out = nullptr) {
    pid_t pid = fork();
    if (pid == 0) _exit(fn());
    int status = 0;
    waitpid(pid, &status, 0);
    if (status_out != nullptr) *status_out = status;
    return pid;
  }

  fs::path dir;
};

bool lineage_has_pid(const Event& e, uint32_t pid) {
  for (const auto& a : e.lineage) {
    if (a->pid == pid) return true;
  }
  return false;
}

TEST_F(SensorTest, ExecThroughTwoShellsCarriesFullAncestry) {
  const fs::path unique = dir / ("palisade_probe_" + std::to_string(getpid()));
  fs::copy_file("/bin/true", unique);
  const std::string inner = unique.string() + " alpha 'beta gamma'; true";
  const std::string outer = "/bin/sh -c \"" + inner + "\"; true";
  run({"/bin/sh", "-c", outer});

  auto execs = wait_for([&](const Event& e) {
    return e.kind == EventKind::kProcessExec && e.exe == unique.string();
  });
  ASSERT_EQ(execs.size(), 1U);
  const Event& e = execs[0];
  EXPECT_EQ(e.argv, (std::vector<std::string>{unique.string(), "alpha", "beta gamma"}));
  EXPECT_EQ(e.cwd, fs::current_path().string());
  EXPECT_EQ(e.task.uid, 0U);
  ASSERT_GE(e.lineage.size(), 3U);
  // Parent and grandparent are the two shells; above them, this test process, then up to init.
  const std::string shell = fs::canonical("/bin/sh").string();
  EXPECT_EQ(e.lineage[0]->exe, shell);
  EXPECT_EQ(e.lineage[1]->exe, shell);
  EXPECT_EQ(e.lineage[2]->pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(e.lineage[2]->exe, fs::read_symlink("/proc/self/exe").string());
  EXPECT_TRUE(e.lineage_complete) << "ancestry reaches init";
  EXPECT_EQ(e.lineage.back()->pid, 1U);

  // Fork and exit of the probe are seen too.
  auto exits = wait_for([&](const Event& x) {
    return x.kind == EventKind::kProcessExit && x.task.tgid == e.task.tgid;
  });
  ASSERT_EQ(exits.size(), 1U);
  EXPECT_EQ(exits[0].exit_code, 0U);
}

TEST_F(SensorTest, FileScriptProducesCreateRenameChmodDelete) {
  const std::string d = dir.string();
  run({"/bin/sh", "-c",
       "cd " + d + " && echo data > a.txt && mv a.txt b.txt && chmod 600 b.txt && rm b.txt"});
  auto opened = wait_for(
      [&](const Event& e) { return e.kind == EventKind::kFileOpen && e.path == d + "/a.txt"; });
  ASSERT_EQ(opened.size(), 1U);
  EXPECT_EQ(opened[0].flags & (O_WRONLY | O_CREAT | O_TRUNC),
            unsigned{O_WRONLY | O_CREAT | O_TRUNC});
  EXPECT_GE(opened[0].result, 0);

  auto renamed = wait_for(
      [&](const Event& e) { return e.kind == EventKind::kFileRename && e.path == d + "/a.txt"; });
  ASSERT_EQ(renamed.size(), 1U);
  EXPECT_EQ(renamed[0].path2, d + "/b.txt");
  EXPECT_EQ(renamed[0].process->exe, fs::canonical("/bin/mv").string());
  EXPECT_EQ(renamed[0].result, 0);

  auto chmoded = wait_for(
      [&](const Event& e) { return e.kind == EventKind::kFileChmod && e.path == d + "/b.txt"; });
  ASSERT_EQ(chmoded.size(), 1U);
  EXPECT_EQ(chmoded[0].mode & 07777U, 0600U);

  auto deleted = wait_for(
      [&](const Event& e) { return e.kind == EventKind::kFileUnlink && e.path == d + "/b.txt"; });
  ASSERT_EQ(deleted.size(), 1U);
  EXPECT_EQ(deleted[0].process->exe, fs::canonical("/bin/rm").string());
  EXPECT_TRUE(lineage_has_pid(deleted[0], static_cast<uint32_t>(getpid())));
}

TEST_F(SensorTest, MassDeletionIsABurstByOneProcessWithZeroLoss) {
  const fs::path tree = dir / "data";
  for (int d = 0; d < 10; ++d) {
    fs::create_directories(tree / ("d" + std::to_string(d)));
    for (int f = 0; f < 50; ++f) {
      std::ofstream(tree / ("d" + std::to_string(d)) / ("f" + std::to_string(f))) << "x";
    }
  }
  const auto lost_before = SensorEnvironment::get().stats().classes[1].lost;
  // The insider case: someone logged in as uid 1000 (the login uid survives sudo) runs rm -rf
  // as root. The child sets its login uid as a login would, then becomes rm.
  const std::string tree_path = tree.string();
  bool login_set = false;
  int login_pipe[2];
  ASSERT_EQ(pipe(login_pipe), 0);
  pid_t rm = fork();
  if (rm == 0) {
    close(login_pipe[0]);
    std::ofstream("/proc/self/loginuid") << "1000";
    std::ifstream check("/proc/self/loginuid");
    unsigned value = 0;
    check >> value;
    char ok = value == 1000 ? 1 : 0;
    if (write(login_pipe[1], &ok, 1) != 1) _exit(1);
    execl("/bin/rm", "rm", "-rf", tree_path.c_str(), nullptr);
    _exit(127);
  }
  close(login_pipe[1]);
  char ok = 0;
  if (read(login_pipe[0], &ok, 1) == 1) login_set = ok == 1;
  close(login_pipe[0]);
  waitpid(rm, nullptr, 0);
  const std::string prefix = tree.string() + "/";
  auto unlinks = wait_for(
      [&](const Event& e) {
        return e.kind == EventKind::kFileUnlink && e.path.rfind(prefix, 0) == 0;
      },
      500);
  ASSERT_EQ(unlinks.size(), 500U);
  for (const auto& e : unlinks) {
    ASSERT_EQ(e.task.tgid, static_cast<uint32_t>(rm)) << "one process did all of it";
    ASSERT_EQ(e.process->exe, fs::canonical("/bin/rm").string());
    ASSERT_EQ(e.result, 0);
    ASSERT_TRUE(lineage_has_pid(e, static_cast<uint32_t>(getpid()))) << "full ancestry";
    if (login_set) {
      ASSERT_EQ(e.task.auid, 1000U) << "the login user is on every event";
    }
  }
  if (!login_set) std::cerr << "note: this kernel has no audit login uid; auid not checked\n";
  auto rmdirs = wait_for(
      [&](const Event& e) {
        return e.kind == EventKind::kFileRmdir && e.task.tgid == static_cast<uint32_t>(rm);
      },
      11);
  EXPECT_EQ(rmdirs.size(), 11U);
  EXPECT_EQ(SensorEnvironment::get().stats().classes[1].lost, lost_before);
  EXPECT_EQ(SensorEnvironment::get().sensor->counters().kernel_drops[1], 0U);
}

TEST_F(SensorTest, TcpListenAcceptConnectAreSeen) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t server = fork();
  if (server == 0) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) _exit(1);
    listen(s, 4);
    socklen_t len = sizeof(addr);
    getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
    uint16_t port = ntohs(addr.sin_port);
    if (write(ready[1], &port, sizeof(port)) != sizeof(port)) _exit(1);
    int c = accept(s, nullptr, nullptr);
    close(c);
    _exit(0);
  }
  uint16_t port = 0;
  ASSERT_EQ(read(ready[0], &port, sizeof(port)), static_cast<ssize_t>(sizeof(port)));
  pid_t client = in_child([port] {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 ? 0 : 1;
  });
  waitpid(server, nullptr, 0);
  close(ready[0]);
  close(ready[1]);

  auto connects = wait_for([&](const Event& e) {
    return e.kind == EventKind::kNetConnect && e.task.tgid == static_cast<uint32_t>(client);
  });
  ASSERT_EQ(connects.size(), 1U);
  EXPECT_EQ(connects[0].result, 0);
  EXPECT_EQ(connects[0].remote.to_string(connects[0].family), "127.0.0.1");
  EXPECT_EQ(connects[0].remote.port, port);
  EXPECT_EQ(connects[0].protocol, IPPROTO_TCP);
  EXPECT_NE(connects[0].local.port, 0);

  auto listens = wait_for([&](const Event& e) {
    return e.kind == EventKind::kNetListen && e.task.tgid == static_cast<uint32_t>(server);
  });
  ASSERT_EQ(listens.size(), 1U);
  EXPECT_EQ(listens[0].local.port, port);

  auto accepts = wait_for([&](const Event& e) {
    return e.kind == EventKind::kNetAccept && e.task.tgid == static_cast<uint32_t>(server);
  });
  ASSERT_EQ(accepts.size(), 1U);
  EXPECT_EQ(accepts[0].remote.port, connects[0].local.port) << "the peer is the client";
}

TEST_F(SensorTest, SetuidIsSeenWithOldAndNewIds) {
  pid_t child = in_child([] { return setuid(65534) == 0 ? 0 : 1; });
  auto events = wait_for([&](const Event& e) {
    return e.kind == EventKind::kPrivSetuid && e.task.tgid == static_cast<uint32_t>(child);
  });
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].result, 0);
  EXPECT_EQ(events[0].args[0], 65534U);
  EXPECT_EQ(events[0].old_uid, 0U);
  EXPECT_EQ(events[0].task.uid, 65534U) << "the event carries the credentials after the call";
}

TEST_F(SensorTest, PtraceAttachNamesTracerAndTarget) {
  pid_t target = fork();
  if (target == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execl("/bin/sleep", "sleep", "60", nullptr);
    _exit(127);
  }
  // The target must have exec'd (and been seen doing so) before it is attached to.
  ASSERT_EQ(wait_for([&](const Event& e) {
              return e.kind == EventKind::kProcessExec &&
                     e.task.tgid == static_cast<uint32_t>(target);
            }).size(),
            1U);
  pid_t tracer = in_child([target] {
    if (ptrace(PTRACE_ATTACH, target, nullptr, nullptr) != 0) return 1;
    waitpid(target, nullptr, 0);
    ptrace(PTRACE_DETACH, target, nullptr, nullptr);
    return 0;
  });
  auto events = wait_for([&](const Event& e) {
    return e.kind == EventKind::kPrivPtrace && e.task.tgid == static_cast<uint32_t>(tracer);
  });
  kill(target, SIGKILL);
  waitpid(target, nullptr, 0);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].args[0], static_cast<uint64_t>(PTRACE_ATTACH));
  EXPECT_EQ(events[0].args[1], static_cast<uint64_t>(target));
  EXPECT_EQ(events[0].result, 0);
  ASSERT_TRUE(events[0].target);
  EXPECT_EQ(events[0].target->pid, static_cast<uint32_t>(target));
  EXPECT_EQ(events[0].target->exe, fs::canonical("/bin/sleep").string());
}

bool hook_attached(const std::string& section) {
  for (const auto& h : SensorEnvironment::get().sensor->capabilities().hooks) {
    if (h.name == section) return h.attached;
  }
  return false;
}

TEST_F(SensorTest, TamperingCallsAreSeen) {
  pid_t child = in_child([] {
    int fd = static_cast<int>(syscall(SYS_memfd_create, "payload", 0));
    if (fd < 0) return 1;
    // A module load that fails (bad fd) still shows the attempt and its result.
    syscall(SYS_finit_module, -1, "", 0);
    return unshare(CLONE_NEWUTS) == 0 ? 0 : 2;
  });
  auto memfd = wait_for([&](const Event& e) {
    return e.kind == EventKind::kPrivMemfd && e.task.tgid == static_cast<uint32_t>(child);
  });
  ASSERT_EQ(memfd.size(), 1U);
  ASSERT_FALSE(memfd[0].strings.empty());
  EXPECT_EQ(memfd[0].strings[0], "payload");
  if (hook_attached("tracepoint/syscalls/sys_exit_finit_module")) {
    auto module = wait_for([&](const Event& e) {
      return e.kind == EventKind::kPrivModule && e.task.tgid == static_cast<uint32_t>(child);
    });
    ASSERT_EQ(module.size(), 1U);
    EXPECT_EQ(module[0].result, -EBADF);
  } else {
    // Kernels without CONFIG_MODULES (like the CI machines) cannot load modules at all; the
    // capability report must say so rather than stay silent.
    const std::string report = SensorEnvironment::get().sensor->capabilities().to_text();
    EXPECT_NE(report.find("finit_module"), std::string::npos) << report;
  }
  auto unshared = wait_for([&](const Event& e) {
    return e.kind == EventKind::kPrivUnshare && e.task.tgid == static_cast<uint32_t>(child);
  });
  ASSERT_EQ(unshared.size(), 1U);
  EXPECT_EQ(unshared[0].args[0], static_cast<uint64_t>(CLONE_NEWUTS));
}

TEST_F(SensorTest, ExitCodeAndSignalAreReported) {
  int status = 0;
  pid_t child = in_child([] { return 3; }, &status);
  auto exits = wait_for([&](const Event& e) {
    return e.kind == EventKind::kProcessExit && e.task.tgid == static_cast<uint32_t>(child);
  });
  ASSERT_EQ(exits.size(), 1U);
  EXPECT_EQ(exits[0].exit_code, 3U << 8);
}

TEST_F(SensorTest, OwnActivityIsFilteredInTheKernel) {
  std::ofstream(dir / "self.txt") << "written by the agent's own process";
  const std::string own = (dir / "self.txt").string();
  // Something observable from a child marks the point by which our own write would have arrived.
  run({"/bin/sh", "-c", "echo x > " + (dir / "marker").string()});
  ASSERT_EQ(wait_for([&](const Event& e) { return e.path == (dir / "marker").string(); }).size(),
            1U);
  EXPECT_TRUE(recorder().matching([&](const Event& e) { return e.path == own; }).empty());
}

TEST_F(SensorTest, CapabilityReportListsHooks) {
  const CapabilityReport& caps = SensorEnvironment::get().sensor->capabilities();
  EXPECT_TRUE(caps.btf);
  EXPECT_TRUE(caps.tracefs);
  for (const auto& h : caps.hooks) {
    if (h.attached) continue;
    EXPECT_FALSE(h.detail.empty()) << h.name << " is missing without a reason";
    EXPECT_NE(h.name.find("module"), std::string::npos)
        << h.name << " should attach on this kernel: " << h.detail;
  }
  EXPECT_TRUE(hook_attached("raw_tracepoint/sched_process_exec"));
  EXPECT_TRUE(hook_attached("tracepoint/syscalls/sys_exit_openat"));
  EXPECT_TRUE(hook_attached("tracepoint/syscalls/sys_exit_connect"));
  EXPECT_NE(caps.to_text().find("BPF-LSM"), std::string::npos);
  EXPECT_FALSE(caps.bpf_lsm.empty());
}

}  // namespace
}  // namespace palisade::agent

// The enforcement canary: a throw-away cgroup bound to a deny-everything workload, and a child
// that tries a connect and an exec in it. Proves, on this kernel, that enforcement refuses.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "enforce/enforcer_impl.h"
#include "enforce/fanotify_guard.h"
#include "palisade/base/cgroup.h"

namespace palisade::agent {

nlohmann::json CanaryResult::to_json() const {
  return {{"time_ms", time_ms},
          {"passed", passed()},
          {"network", {{"passed", network.passed}, {"detail", network.detail}}},
          {"exec", {{"passed", exec.passed}, {"detail", exec.detail}}}};
}

namespace {

// What the canary's child does, with only async-signal-safe calls (the agent has threads): join
// the cgroup, try a connect and an exec, report both errnos through the pipe.
[[noreturn]] void canary_child(const char* procs, int report_fd) {
  char pid_text[24];
  int n = 0;
  char digits[24];
  for (pid_t p = getpid(); p > 0; p /= 10) digits[n++] = static_cast<char>('0' + p % 10);
  for (int i = 0; i < n; ++i) pid_text[i] = digits[n - 1 - i];
  const int procs_fd = open(procs, O_WRONLY | O_CLOEXEC);
  if (procs_fd < 0 || write(procs_fd, pid_text, static_cast<size_t>(n)) != n) _exit(101);
  close(procs_fd);
  int results[2] = {0, 0};
  const int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  results[0] = connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 ? 0 : errno;
  close(sock);
  if (write(report_fd, &results[0], sizeof(int)) != sizeof(int)) _exit(102);
  char* const argv[] = {const_cast<char*>("/usr/bin/true"), nullptr};
  execv(argv[0], argv);
  results[1] = errno;
  if (write(report_fd, &results[1], sizeof(int)) != sizeof(int)) _exit(102);
  _exit(100);
}

}  // namespace

CanaryResult Enforcer::run_canary() {
  Impl& d = *impl_;
  CanaryResult result;
  result.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::string dir = base::cgroup2_mount() + "/palisade-canary-" + std::to_string(getpid());
  mkdir(dir.c_str(), 0700);
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0) {
    result.network.detail = result.exec.detail = "cannot create the canary cgroup " + dir;
    return result;
  }
  const uint64_t cgroup_id = st.st_ino;
  const bool kernel_exec = d.exec_mechanism == "lsm" || d.exec_mechanism == "kill";
  const int workloads = bpf_map__fd(d.skel->maps.pal_workloads);
  {
    std::lock_guard lock(d.mutex);
    pal_rule_set none{};
    bpf_map_update_elem(bpf_map__fd(d.skel->maps.pal_net_rules), &kCanarySlot, &none, BPF_ANY);
    pal_workload canary{kCanarySlot, PAL_WL_EGRESS | PAL_WL_EGRESS_ENFORCE};
    if (kernel_exec) canary.flags |= PAL_WL_EXEC | PAL_WL_EXEC_ENFORCE;
    bpf_map_update_elem(workloads, &cgroup_id, &canary, BPF_ANY);
    d.canary_cgroup = cgroup_id;
    if (d.lockdown) d.lockdown->policy_changed();
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) report[0] = report[1] = -1;
  const std::string procs = dir + "/cgroup.procs";
  const pid_t child = report[0] >= 0 ? fork() : -1;
  if (child == 0) canary_child(procs.c_str(), report[1]);
  if (report[1] >= 0) close(report[1]);
  int status = 0;
  bool reaped = false;
  // A stuck exec (a decider that never answers) must not stall the agent: 5 s, then kill.
  for (int waited = 0; child > 0 && waited < 500 && !reaped; ++waited) {
    reaped = waitpid(child, &status, WNOHANG) == child;
    if (!reaped) usleep(10'000);
  }
  if (child > 0 && !reaped) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
  }
  int errnos[2] = {-1, -1};
  if (report[0] >= 0) {
    for (int& e : errnos) {
      if (read(report[0], &e, sizeof(e)) != sizeof(e)) break;
    }
    close(report[0]);
  }
  {
    std::lock_guard lock(d.mutex);
    bpf_map_delete_elem(workloads, &cgroup_id);
    d.canary_cgroup = 0;
  }
  rmdir(dir.c_str());

  result.network.passed = errnos[0] == EPERM;
  result.network.detail =
      result.network.passed
          ? "connect to 127.0.0.1:9 refused with EPERM by cgroup/connect4"
          : "connect to 127.0.0.1:9 from the canary cgroup was not refused by the kernel (" +
                (errnos[0] < 0    ? std::string("no answer from the canary")
                 : errnos[0] == 0 ? std::string("it connected")
                                  : std::string(std::strerror(errnos[0]))) +
                ")";
  const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  if (d.exec_mechanism == "fanotify" && d.lockdown && !d.lockdown->armed()) {
    result.exec.passed = true;
    result.exec.detail =
        "not checked: no workload is locked down, so the fanotify exec guard marks nothing yet";
  } else if (d.exec_mechanism == "kill") {
    result.exec.passed = killed && errnos[1] == -1;
    result.exec.detail = result.exec.passed ? "/usr/bin/true killed at exec (SIGKILL)"
                                            : "/usr/bin/true was not killed at exec";
  } else {
    result.exec.passed = errnos[1] == EPERM;
    result.exec.detail = result.exec.passed
                             ? "exec of /usr/bin/true refused with EPERM (" + d.exec_mechanism + ")"
                             : "exec of /usr/bin/true in the canary cgroup was not refused (" +
                                   d.exec_mechanism + ")";
  }
  if (!reaped) result.exec.detail += "; the canary hung and was killed";
  return result;
}

}  // namespace palisade::agent

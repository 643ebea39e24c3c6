// Enforcement end to end, as root on the real kernel: the real agent binary enforces
// WorkloadPolicies on throwaway cgroups; the tests exec, connect and send from processes placed in
// them and check what the kernel let through and what the agent reported.
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
#include <cstring>
#include <fstream>
#include <map>

#include "agent_harness.h"
#include "fake_apiserver.h"
#include "palisade/agent/container.h"
#include "palisade/agent/sensor.h"
#include "palisade/base/cgroup.h"

namespace palisade::testing {
namespace {

using namespace std::chrono_literals;

class EnforcementTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (geteuid() != 0) GTEST_SKIP() << "enforcement needs root (eBPF, cgroups, fanotify)";
    pins = "/sys/fs/bpf/palisade-test-" + std::to_string(getpid());
    fs::create_directories(dir / "policies");
  }

  void TearDown() override {
    if (agent > 0) stop_agent();
    std::string out;
    run_capture({kCli, "agent", "--uninstall", "--pin-directory", pins}, out);
    for (const auto& cg : cgroups) rmdir(cg.c_str());
    AgentTest::TearDown();
  }

  // A fresh cgroup v2 directory; returns its path relative to the cgroup2 mount.
  std::string make_cgroup(const std::string& name) {
    std::string relative = "/palisade-test-" + std::to_string(getpid()) + "-" + name;
    const std::string full = base::cgroup2_mount() + relative;
    mkdir(full.c_str(), 0755);
    cgroups.push_back(full);
    return relative;
  }

  void write_policy(const std::string& name, const std::string& yaml) {
    std::ofstream(dir / "policies" / (name + ".yaml")) << yaml;
  }

  void start(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--policy-dir", (dir / "policies").string(), "--pin-directory",
                                     pins,           "--status-interval",         "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    start_agent(args);
    ASSERT_TRUE(wait_until([&] { return bound_workloads() >= expected_bindings; }, 60s))
        << slurp(dir / "agent.log");
  }

  size_t bound_workloads() {
    std::ifstream in(dir / "status.json");
    json status = json::parse(in, nullptr, false);
    if (status.is_discarded() || !status.contains("enforcement")) return 0;
    return status["enforcement"].value("workloads", json::array()).size();
  }

  json status() {
    std::ifstream in(dir / "status.json");
    return json::parse(in, nullptr, false);
  }

  // Runs `body` in a child process that first moves itself into the cgroup; returns its wait
  // status. The child never returns to the test.
  int in_cgroup(const std::string& cgroup, const std::function<int()>& body) {
    pid_t pid = fork();
    if (pid == 0) {
      std::ofstream(base::cgroup2_mount() + cgroup + "/cgroup.procs") << getpid() << std::flush;
      _exit(body());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  }

  // The exit status of exec'ing argv inside the cgroup (126 when the exec itself was refused).
  int exec_in(const std::string& cgroup, const std::vector<std::string>& argv) {
    return in_cgroup(cgroup, [&] {
      std::vector<char*> args;
      args.reserve(argv.size() + 1);
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      return errno == EPERM || errno == EACCES ? 126 : 127;
    });
  }

  // 0 when the connect succeeded or was refused by the peer; the errno when the kernel refused.
  int connect_from(const std::string& cgroup, uint16_t port, int type = SOCK_STREAM) {
    const int status = in_cgroup(cgroup, [&] {
      int fd = socket(AF_INET, type, 0);
      timeval limit{3, 0};  // a dropped SYN must fail the test, not hang it
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(port);
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (type == SOCK_DGRAM) {
        return sendto(fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 1 ? 0 : errno;
      }
      if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0) return 0;
      return errno == ECONNREFUSED ? 0 : errno;
    });
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::vector<json> events_of(const std::string& kind) {
    std::vector<json> out;
    for (const auto& e : json_lines(dir / "events.jsonl")) {
      if (e.contains("unmapped") && e["unmapped"]["palisade"].value("event", "") == kind) {
        out.push_back(e);
      }
    }
    return out;
  }

  bool has_denial(const std::string& kind, const std::function<bool(const json&)>& pred) {
    return wait_until(
        [&] {
          for (const auto& e : events_of(kind)) {
            if (pred(e)) return true;
          }
          return false;
        },
        10s);
  }

  fs::path copy_of_true(const std::string& name) {
    fs::path target = dir / name;
    fs::copy_file("/usr/bin/true", target, fs::copy_options::overwrite_existing);
    chmod(target.c_str(), 0755);
    return target;
  }

  std::string pins;
  std::vector<std::string> cgroups;
  size_t expected_bindings = 1;
};

std::string lockdown_policy(const std::string& name, const std::string& cgroup,
                            const std::string& mode, uint16_t tcp_port, uint16_t udp_port) {
  return "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: " + name +
         "}\nspec:\n  selector:\n    cgroups: [\"" + cgroup + "\"]\n  mode: " + mode +
         "\n  process:\n    allow:\n      - path: \"/usr/bin/*\"\n  network:\n    egress:\n"
         "      allow:\n        - {cidr: 127.0.0.1/32, ports: \"" +
         std::to_string(tcp_port) + "\", protocol: tcp}\n        - {cidr: 127.0.0.1/32, ports: \"" +
         std::to_string(udp_port) +
         "\", protocol: udp}\n    management:\n"
         "      - {cidr: 127.0.0.1/32, ports: \"" +
         std::to_string(tcp_port + 1) + "\", protocol: tcp}\n";
}

TEST_F(EnforcementTest, EnforceBlocksExecAndConnectsWhileAuditOnlyReports) {
  const std::string locked = make_cgroup("enforce");
  const std::string watched = make_cgroup("audit");
  write_policy("locked", lockdown_policy("locked", locked, "enforce", 18081, 18091));
  write_policy("watched", lockdown_policy("watched", watched, "audit", 18081, 18091));
  expected_bindings = 2;
  start();
  EXPECT_EQ(status()["enforcement"].value("exec_mechanism", ""), "fanotify");

  // Application lockdown: allowlisted programs run; a binary dropped into /tmp does not.
  const fs::path dropper = copy_of_true("dropper");
  EXPECT_EQ(WEXITSTATUS(exec_in(locked, {"/usr/bin/true"})), 0);
  EXPECT_EQ(WEXITSTATUS(exec_in(locked, {"/bin/sh", "-c", "/usr/bin/true"})), 0);
  EXPECT_EQ(WEXITSTATUS(exec_in(locked, {dropper.string()})), 126);
  EXPECT_EQ(WEXITSTATUS(exec_in(locked, {"/bin/sh", "-c", dropper.string()})), 126);
  // Nor through the dynamic loader: ld.so run by itself is judged as what it is.
  EXPECT_EQ(WEXITSTATUS(exec_in(locked, {"/lib64/ld-linux-x86-64.so.2", dropper.string()})), 126);
  EXPECT_TRUE(has_denial("exec_deny", [&](const json& e) {
    return e["process"]["file"]["path"] == dropper.string() &&
           e["unmapped"]["palisade"]["enforcement"]["verdict"] == "denied" &&
           e["unmapped"]["palisade"]["enforcement"]["policy"] == "locked" &&
           e["action"] == "Denied";
  })) << slurp(dir / "events.jsonl").substr(0, 4000);

  // Microsegmentation: the allowed port connects (refused by the closed port, not the kernel).
  EXPECT_EQ(connect_from(locked, 18081), 0);
  EXPECT_EQ(connect_from(locked, 18082), EPERM);
  EXPECT_EQ(connect_from(locked, 18091, SOCK_DGRAM), 0);
  EXPECT_EQ(connect_from(locked, 18092, SOCK_DGRAM), EPERM);
  EXPECT_TRUE(has_denial("net_deny", [](const json& e) {
    return e["dst_endpoint"]["port"] == 18082 &&
           e["unmapped"]["palisade"]["enforcement"]["hook"] == "connect" &&
           e["unmapped"]["palisade"]["enforcement"]["reason"] == "default-deny";
  }));
  EXPECT_TRUE(has_denial("net_deny", [](const json& e) {
    return e["dst_endpoint"]["port"] == 18092 &&
           e["unmapped"]["palisade"]["enforcement"]["hook"] == "sendmsg" &&
           e["connection_info"]["protocol_name"] == "udp";
  }));

  // Audit mode: everything runs and connects; what would have been blocked is reported.
  EXPECT_EQ(WEXITSTATUS(exec_in(watched, {dropper.string()})), 0);
  EXPECT_EQ(connect_from(watched, 18082), 0);
  EXPECT_EQ(connect_from(watched, 18092, SOCK_DGRAM), 0);
  EXPECT_TRUE(has_denial("net_deny", [](const json& e) {
    return e["dst_endpoint"]["port"] == 18092 &&
           e["unmapped"]["palisade"]["enforcement"]["verdict"] == "audit" &&
           e["unmapped"]["palisade"]["enforcement"]["policy"] == "watched";
  }));
  EXPECT_TRUE(wait_until(
      [&] {
        for (const auto& f : findings_in(dir / "events.jsonl")) {
          const std::string text = f.dump();
          if (text.find("would block (audit)") != std::string::npos &&
              f.value("message", "").find("watched: executable " + dropper.string()) !=
                  std::string::npos) {
            return true;
          }
        }
        return false;
      },
      10s))
      << "no audit finding for the dropper";

  // A host process outside the cgroups is untouched.
  EXPECT_EQ(system(dropper.c_str()), 0);
}

// A server in the workload's cgroup; a client on the host connects (3 s limit): 0 when the
// connection was accepted, else the errno.
int connect_to(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval limit{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int rc = connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0 ? 0 : errno;
  close(fd);
  return rc;
}

TEST_F(EnforcementTest, IngressRulesDropNewFlowsToPortsTheWorkloadMayNotServe) {
  const std::string server = make_cgroup("ingress");
  write_policy("server",
               "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: server}\n"
               "spec:\n  selector:\n    cgroups: [\"" +
                   server +
                   "\"]\n  mode: enforce\n  network:\n    ingress:\n      allow:\n"
                   "        - {ports: \"18181\", protocol: tcp}\n");
  start({"--canary-interval", "0"});
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t listener = fork();
  if (listener == 0) {
    std::ofstream(base::cgroup2_mount() + server + "/cgroup.procs") << getpid() << std::flush;
    for (int port : {18181, 18182}) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      sockaddr_in at{};
      at.sin_family = AF_INET;
      at.sin_port = htons(static_cast<uint16_t>(port));
      at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0 || listen(fd, 8) != 0) {
        _exit(1);
      }
    }
    if (write(ready[1], "r", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  EXPECT_EQ(connect_to(18181), 0);
  EXPECT_NE(connect_to(18182), 0);  // the SYN is dropped: the client times out
  EXPECT_TRUE(has_denial("net_deny", [](const json& e) {
    const json& f = e["unmapped"]["palisade"]["enforcement"];
    return f["hook"] == "ingress" && e["connection_info"]["direction"] == "Inbound" &&
           e["dst_endpoint"]["port"] == 18182;
  }));
  kill(listener, SIGKILL);
  waitpid(listener, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
}

TEST_F(EnforcementTest, NetworkDenialSurvivesAgentKillAndIsAdoptedThenUninstalled) {
  const std::string locked = make_cgroup("persist");
  write_policy("locked", lockdown_policy("locked", locked, "enforce", 18081, 18091));
  start();
  EXPECT_FALSE(status()["enforcement"].value("adopted", true));
  ASSERT_EQ(connect_from(locked, 18082), EPERM);

  // kill -9: nothing runs in user space any more, the pinned programs still refuse.
  kill(agent, SIGKILL);
  waitpid(agent, nullptr, 0);
  agent = -1;
  EXPECT_EQ(connect_from(locked, 18082), EPERM);
  EXPECT_EQ(connect_from(locked, 18081), 0);

  // A new agent adopts what is pinned (no second set of programs) and reports what it missed.
  fs::remove(dir / "status.json");
  start();
  EXPECT_TRUE(status()["enforcement"].value("adopted", false));
  EXPECT_EQ(connect_from(locked, 18082), EPERM);

  // Isolation through the pinned maps: all but the management port is cut off, then restored.
  std::string out;
  const std::string cg = base::cgroup2_mount() + locked;
  EXPECT_EQ(
      run_capture({kCli, "respond", "--no-store", "--pin-directory", pins, "isolate", cg}, out), 0)
      << out;
  EXPECT_NE(out.find("\"Isolate\""), std::string::npos);
  EXPECT_EQ(connect_from(locked, 18081), EPERM);
  EXPECT_EQ(connect_from(locked, 18083), EPERM);
  EXPECT_EQ(connect_from(locked, 18082), 0);  // the management port
  EXPECT_EQ(
      run_capture({kCli, "respond", "--no-store", "--pin-directory", pins, "release", cg}, out), 0)
      << out;
  EXPECT_EQ(connect_from(locked, 18081), 0);

  // Only --uninstall lifts kernel enforcement.
  stop_agent();
  EXPECT_EQ(connect_from(locked, 18082), EPERM);
  ASSERT_EQ(run_capture({kCli, "agent", "--uninstall", "--pin-directory", pins}, out), 0) << out;
  EXPECT_EQ(connect_from(locked, 18082), 0);
}

// The longest of `count` host execs of /usr/bin/true (from this test's cgroup, not locked).
std::chrono::milliseconds longest_host_exec(int count) {
  std::chrono::milliseconds longest{};
  for (int i = 0; i < count; ++i) {
    const auto begin = std::chrono::steady_clock::now();
    std::string out;
    EXPECT_EQ(run_capture({"/usr/bin/true"}, out), 0);
    longest = std::max(longest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - begin));
  }
  return longest;
}

// The fanotify decision timeout (250 ms by default) and what a loaded CI machine adds to it.
constexpr auto kExecBound = 250ms + 750ms;

TEST_F(EnforcementTest, StoppedOrKilledAgentNeverHoldsAnExecPastTheTimeout) {
  const std::string cg = make_cgroup("stall");
  write_policy("stall", lockdown_policy("stall", cg, "enforce", 9, 9));
  const fs::path config = dir / "fail-open.yaml";
  std::ofstream(config) << "enforcement:\n  exec_mechanism: fanotify\n";
  start({"--config", config.string()});
  const fs::path outside = copy_of_true("not-allowlisted");
  ASSERT_EQ(WEXITSTATUS(exec_in(cg, {outside.string()})), 126) << slurp(dir / "agent.log");
  ASSERT_TRUE(status()["enforcement"]["exec_guard"]["warden"].value("running", false));

  ASSERT_EQ(kill(agent, SIGSTOP), 0);
  EXPECT_LT(longest_host_exec(10), kExecBound) << "a stopped agent held the host's execs";
  EXPECT_EQ(WEXITSTATUS(exec_in(cg, {outside.string()})), 0)
      << "failing open (the default), the warden allows while the agent cannot judge";
  ASSERT_EQ(kill(agent, SIGCONT), 0);
  EXPECT_TRUE(wait_until(
      [&] {
        const json warden = status()["enforcement"]["exec_guard"]["warden"];
        return warden.value("takeovers", 0) >= 1 && warden.value("handbacks", 0) >= 1;
      },
      15s))
      << "the takeover is counted and reported once the agent is back";
  EXPECT_TRUE(wait_until([&] { return WEXITSTATUS(exec_in(cg, {outside.string()})) == 126; }, 10s))
      << "the agent judges again";

  ASSERT_EQ(kill(agent, SIGKILL), 0);
  waitpid(agent, nullptr, 0);
  agent = -1;
  EXPECT_LT(longest_host_exec(10), kExecBound) << "a killed agent held the host's execs";
}

TEST_F(EnforcementTest, StoppedAgentFailingClosedRefusesTheLockedWorkloadOnly) {
  const std::string cg = make_cgroup("stall-closed");
  write_policy("stall", lockdown_policy("stall", cg, "enforce", 9, 9));
  const fs::path config = dir / "fail-closed.yaml";
  std::ofstream(config) << "enforcement:\n  exec_mechanism: fanotify\n  fanotify:\n"
                           "    on_timeout: deny\n";
  start({"--config", config.string()});
  ASSERT_EQ(WEXITSTATUS(exec_in(cg, {"/usr/bin/true"})), 0) << slurp(dir / "agent.log");

  ASSERT_EQ(kill(agent, SIGSTOP), 0);
  EXPECT_LT(longest_host_exec(10), kExecBound);
  EXPECT_EQ(WEXITSTATUS(exec_in(cg, {"/usr/bin/true"})), 126)
      << "failing closed, nothing runs in the locked workload while nobody can judge it";
  ASSERT_EQ(kill(agent, SIGCONT), 0);
  EXPECT_TRUE(wait_until([&] { return WEXITSTATUS(exec_in(cg, {"/usr/bin/true"})) == 0; }, 10s))
      << "allowlisted programs run again once the agent is back";
  EXPECT_TRUE(wait_until(
      [&] {
        return status()["enforcement"]["exec_guard"]["warden"].value("answered_deny", 0) >= 1;
      },
      15s));
}

TEST_F(EnforcementTest, KillMechanismKillsExecOutsideAllowlist) {
  const std::string locked = make_cgroup("kill");
  write_policy("locked", lockdown_policy("locked", locked, "enforce", 18081, 18091));
  start({"--exec-mechanism", "kill"});
  EXPECT_EQ(status()["enforcement"].value("exec_mechanism", ""), "kill");
  const fs::path dropper = copy_of_true("dropper");
  // Allowed means it ran to its own exit, not that a signal ended it (whose exit status is 0 too).
  struct stat st {};
  stat("/usr/bin/true", &st);  // a stat marks the ctime as queried (Linux 6.13+): still allowed
  const int allowed = exec_in(locked, {"/usr/bin/true"});
  EXPECT_TRUE(WIFEXITED(allowed) && WEXITSTATUS(allowed) == 0) << allowed;
  const int killed = exec_in(locked, {dropper.string()});
  EXPECT_TRUE(WIFSIGNALED(killed) && WTERMSIG(killed) == SIGKILL) << killed;
  EXPECT_TRUE(has_denial("exec_deny", [&](const json& e) {
    return e["unmapped"]["palisade"]["enforcement"]["hook"] == "exec-kill" &&
           e["process"]["file"]["path"] == dropper.string();
  }));
}

TEST_F(EnforcementTest, CanaryProvesEnforcementAndRaisesAFindingWhenItStopsWorking) {
  const std::string locked = make_cgroup("canary");
  write_policy("locked", lockdown_policy("locked", locked, "enforce", 18081, 18091));
  start({"--canary-interval", "2"});
  json canary = status()["enforcement"]["canary"];
  ASSERT_TRUE(canary.value("passed", false)) << canary.dump();
  EXPECT_NE(canary["exec"].value("detail", "").find("fanotify"), std::string::npos);

  // Someone detaches the connect hook behind the agent's back: the next canary notices.
  const std::string link = pins + "/enforce-v1/link_enforce_connect4";
  const int fd = bpf_obj_get(link.c_str());
  ASSERT_GE(fd, 0) << link;
  ASSERT_EQ(bpf_link_detach(fd), 0) << std::strerror(errno);
  close(fd);
  EXPECT_TRUE(wait_until(
      [&] {
        json c = status()["enforcement"]["canary"];
        return c.is_object() && !c.value("passed", true);
      },
      20s));
  canary = status()["enforcement"]["canary"];
  EXPECT_FALSE(canary["network"].value("passed", true));
  EXPECT_TRUE(canary["exec"].value("passed", false));
  EXPECT_TRUE(wait_until([&] {
    for (const auto& f : findings_in(dir / "events.jsonl")) {
      if (f["finding_info"]["analytic"].value("name", "") == "enforcement-canary-failed" &&
          f.value("severity", "") == "High") {
        return true;
      }
    }
    return false;
  }));
  std::string out;
  run_capture({kCli, "agent", "status", "--status-file", (dir / "status.json").string()}, out);
  EXPECT_NE(out.find("canary:     FAILED"), std::string::npos) << out;
}

std::string response_rule(const std::string& name, const std::string& condition,
                          const std::string& response) {
  return "apiVersion: palisade.dev/v1\nkind: DetectionRule\nmetadata: {name: " + name +
         "}\nspec:\n  condition: " + condition + "\n  output: \"" + name +
         " {process.exe}\"\n  severity: high\n  response: " + response + "\n---\n";
}

TEST_F(EnforcementTest, DetectionRulesTriggerKillQuarantineAndIsolate) {
  const std::string isolated = make_cgroup("respond");
  const fs::path kill_me = dir / "kill-me";
  const fs::path isolate_me = dir / "isolate-me";
  const fs::path dropped = dir / "dropped.bin";
  fs::copy_file("/usr/bin/sleep", kill_me);
  fs::copy_file("/usr/bin/true", isolate_me);
  write_policy(
      "responses",
      response_rule("kill-it", "event.kind = exec and process.exe = " + kill_me.string(), "kill") +
          response_rule("quarantine-it", "event.kind = open and file.path = " + dropped.string(),
                        "quarantine") +
          response_rule("isolate-it", "event.kind = exec and process.exe = " + isolate_me.string(),
                        "isolate"));
  expected_bindings = 0;
  std::ofstream(dir / "agent.yaml")
      << "responses:\n  quarantine_directory: " << (dir / "vault").string() << "\n";
  start({"--canary-interval", "0", "--config", (dir / "agent.yaml").string()});
  // kill: the process the rule matched dies.
  const pid_t victim = fork();
  if (victim == 0) {
    execl(kill_me.c_str(), kill_me.c_str(), "30", nullptr);
    _exit(127);
  }
  int status = 0;
  bool reaped = wait_until([&] { return waitpid(victim, &status, WNOHANG) == victim; }, 20s);
  if (!reaped) kill(victim, SIGKILL), waitpid(victim, &status, 0);
  EXPECT_TRUE(reaped && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  // quarantine: the file the rule matched is moved away, mode 000, hash kept.
  std::ofstream(dropped) << "payload";
  EXPECT_TRUE(wait_until([&] { return !fs::exists(dropped); }, 20s));

  // isolate: the cgroup of the process the rule matched loses the network.
  ASSERT_EQ(connect_from(isolated, 18081), 0);
  EXPECT_EQ(WEXITSTATUS(exec_in(isolated, {isolate_me.string()})), 0);
  EXPECT_TRUE(wait_until([&] { return connect_from(isolated, 18081) == EPERM; }, 20s));

  // Each action is an audited Remediation Activity event naming the rule that asked.
  std::map<std::string, json> by_rule;
  ASSERT_TRUE(wait_until([&] {
    by_rule.clear();
    for (const auto& e : json_lines(dir / "events.jsonl")) {
      if (e.value("category_uid", 0) == 7) by_rule[e["unmapped"]["palisade"].value("rule", "")] = e;
    }
    return by_rule.size() >= 3;
  }));
  EXPECT_EQ(by_rule["kill-it"]["class_uid"], 7003);
  EXPECT_EQ(by_rule["kill-it"]["status"], "Success");
  EXPECT_EQ(by_rule["quarantine-it"]["class_uid"], 7002);
  EXPECT_EQ(by_rule["quarantine-it"]["status"], "Success") << by_rule["quarantine-it"].dump();
  EXPECT_EQ(by_rule["isolate-it"]["class_uid"], 7004);
  EXPECT_EQ(by_rule["isolate-it"]["status"], "Success") << by_rule["isolate-it"].dump();
  EXPECT_NE(by_rule["kill-it"]["unmapped"]["palisade"]["requested_by"]
                .value("tool", "")
                .find("rule kill-it"),
            std::string::npos);

  // Released by the operator.
  std::string out;
  const std::string cg = base::cgroup2_mount() + isolated;
  EXPECT_EQ(
      run_capture({kCli, "respond", "--no-store", "--pin-directory", pins, "release", cg}, out), 0)
      << out;
  EXPECT_EQ(connect_from(isolated, 18081), 0);
}

TEST_F(EnforcementTest, ProtectedFileIsRestoredWatchedChangeAttributedAndBaselineDriftFound) {
  const fs::path etc = dir / "etc";
  fs::create_directories(etc / "watched");
  const fs::path conf = etc / "protected.conf";
  std::ofstream(conf) << "approved\n";
  std::ofstream(etc / "watched" / "a.txt") << "one\n";
  // The operator's baseline, taken before the agent starts; then a change while nobody watches.
  const fs::path tree = dir / "tree";
  fs::create_directories(tree);
  std::ofstream(tree / "motd") << "hello\n";
  std::string out;
  ASSERT_EQ(run_capture({kCli, "fim", "baseline", tree.string(), "--db", (dir / "fim.db").string(),
                         "--content-dir", (dir / "content").string()},
                        out),
            0)
      << out;
  std::ofstream(tree / "motd") << "changed while the agent was down\n";

  write_policy("files",
               "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: etc}\n"
               "spec:\n  selector: {hosts: [\"*\"]}\n  mode: enforce\n  files:\n"
               "    watch:\n      - path: " +
                   (etc / "watched").string() + "\n    protect:\n      - " + conf.string() + "\n");
  std::ofstream(dir / "agent.yaml")
      << "file_integrity:\n  database: " << (dir / "fim.db").string()
      << "\n  protect_database: " << (dir / "protect.db").string()
      << "\n  content_directory: " << (dir / "content").string() << "\n";
  expected_bindings = 0;
  start({"--canary-interval", "0", "--config", (dir / "agent.yaml").string()});

  // The rescan at start finds the change made while the agent was down.
  EXPECT_TRUE(wait_until([&] {
    for (const auto& f : findings_in(dir / "events.jsonl")) {
      if (f["finding_info"]["analytic"].value("name", "") == "file-integrity-baseline-drift" &&
          f.value("message", "").find((tree / "motd").string()) != std::string::npos) {
        return true;
      }
    }
    return false;
  })) << slurp(dir / "agent.log");

  // A change while the agent runs is seen as it happens, confirmed against the baseline and
  // attributed to the process that made it.
  const pid_t editor = fork();
  if (editor == 0) {
    execl("/bin/sh", "sh", "-c", ("echo edited >> " + (tree / "motd").string()).c_str(), nullptr);
    _exit(127);
  }
  waitpid(editor, nullptr, 0);
  EXPECT_TRUE(wait_until([&] {
    for (const auto& f : findings_in(dir / "events.jsonl")) {
      if (f["finding_info"]["analytic"].value("name", "") == "file-integrity-baseline-drift" &&
          f.value("message", "").find("confirmed against the baseline") != std::string::npos &&
          f["evidences"][0]["process"].value("pid", 0) == editor) {
        return true;
      }
    }
    return false;
  })) << slurp(dir / "agent.log");

  // A script tampers with the protected file: it is put back, and the event says who changed it.
  const pid_t script = fork();
  if (script == 0) {
    execl("/bin/sh", "sh", "-c", ("echo tampered > " + conf.string()).c_str(), nullptr);
    _exit(127);
  }
  waitpid(script, nullptr, 0);
  EXPECT_TRUE(wait_until([&] { return slurp(conf) == "approved\n"; }, 20s)) << slurp(conf);
  EXPECT_TRUE(wait_until([&] {
    for (const auto& e : json_lines(dir / "events.jsonl")) {
      if (e.value("class_uid", 0) == 7002 && e.value("activity_name", "") == "Restore" &&
          e.value("status", "") == "Success" &&
          e["unmapped"]["palisade"]["changed_by"].value("pid", 0) == script) {
        return true;
      }
    }
    return false;
  }));

  // A script appends to a watched file: reported with the script's process and its ancestry.
  const pid_t writer = fork();
  if (writer == 0) {
    execl("/bin/sh", "sh", "-c", ("echo two >> " + (etc / "watched" / "a.txt").string()).c_str(),
          nullptr);
    _exit(127);
  }
  waitpid(writer, nullptr, 0);
  EXPECT_TRUE(wait_until([&] {
    for (const auto& f : findings_in(dir / "events.jsonl")) {
      if (f["finding_info"]["analytic"].value("name", "") != "workload-policy/etc/files") continue;
      const json& process = f["evidences"][0]["process"];
      if (process.value("pid", 0) == writer &&
          process["file"].value("path", "") == "/usr/bin/dash" &&
          !process.value("lineage", json::array()).empty()) {
        return true;
      }
    }
    return false;
  })) << slurp(dir / "events.jsonl").substr(0, 3000);
}

TEST_F(EnforcementTest, UnidentifiedCgroupsUnderAGuardedParentGetTheDefaultPosture) {
  const std::string parent = make_cgroup("guard");
  const std::string known = parent + "/known";
  const std::string unknown = parent + "/new";
  mkdir((base::cgroup2_mount() + known).c_str(), 0755);
  mkdir((base::cgroup2_mount() + unknown).c_str(), 0755);
  cgroups.insert(cgroups.begin(), base::cgroup2_mount() + unknown);
  cgroups.insert(cgroups.begin(), base::cgroup2_mount() + known);
  write_policy("known", lockdown_policy("known", known, "enforce", 18081, 18091));
  std::ofstream(dir / "agent.yaml")
      << "enforcement:\n  unidentified:\n    parents: [" << parent << "]\n    posture: deny\n";
  start({"--canary-interval", "0", "--config", (dir / "agent.yaml").string()});

  // Not identified yet: nothing connects, nothing runs.
  EXPECT_EQ(connect_from(unknown, 18081), EPERM);
  EXPECT_EQ(WEXITSTATUS(exec_in(unknown, {"/usr/bin/true"})), 126);
  EXPECT_TRUE(has_denial("net_deny", [](const json& e) {
    return e["unmapped"]["palisade"]["enforcement"]["policy"] == "unidentified-workload";
  }));
  EXPECT_TRUE(has_denial("exec_deny", [](const json& e) {
    return e["unmapped"]["palisade"]["enforcement"]["policy"] == "unidentified-workload";
  }));
  // Identified (bound to its policy): its own rules apply.
  EXPECT_EQ(connect_from(known, 18081), 0);
  EXPECT_EQ(connect_from(known, 18082), EPERM);
  EXPECT_EQ(WEXITSTATUS(exec_in(known, {"/usr/bin/true"})), 0);
  // Outside the guarded parent nothing changes.
  EXPECT_EQ(system("/usr/bin/true"), 0);
}

// A pod as the API serves it, with an IP on this machine's loopback so that a connect to it can
// be tried for real.
json peer_pod(const std::string& name, const std::string& ns, const std::string& app,
              const std::string& ip) {
  return json{
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name}, {"namespace", ns}, {"uid", "uid-" + name}, {"labels", {{"app", app}}}}},
      {"spec", {{"nodeName", "node-b"}}},
      {"status", {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}}}};
}

TEST_F(EnforcementTest, PeersNamedByWorkloadFollowThePodsAddresses) {
  palisade::k8s::testing::FakeApiServer api;
  api.push("ADDED", peer_pod("db-0", "data", "db", "127.0.0.2"));
  api.push("ADDED", peer_pod("cache-0", "data", "cache", "127.0.0.3"));
  const fs::path kubeconfig = dir / "kubeconfig";
  std::ofstream(kubeconfig) << api.kubeconfig();
  const std::string client = make_cgroup("peers");
  write_policy(
      "client",
      "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: client}\n"
      "spec:\n  selector:\n    cgroups: [\"" +
          client +
          "\"]\n  mode: enforce\n  network:\n    egress:\n      allow:\n"
          "        - {workload: {namespace: data, podLabels: {app: db}}, ports: \"18081\"}\n");
  start({"--canary-interval", "0", "--kubeconfig", kubeconfig.string(), "--node-name", "node-a"});
  auto connect_ip = [&](const char* ip) {
    const int status = in_cgroup(client, [&] {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(18081);
      inet_pton(AF_INET, ip, &to.sin_addr);
      if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0) return 0;
      return errno == ECONNREFUSED ? 0 : errno;
    });
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  // The db pod's address is allowed, the cache pod's is not.
  EXPECT_TRUE(wait_until([&] { return connect_ip("127.0.0.2") == 0; }, 20s));
  EXPECT_EQ(connect_ip("127.0.0.3"), EPERM);
  // The db pod is rescheduled with a new address: the rule follows it.
  api.push("MODIFIED", peer_pod("db-0", "data", "db", "127.0.0.4"));
  EXPECT_TRUE(wait_until([&] { return connect_ip("127.0.0.2") == EPERM; }, 20s));
  EXPECT_EQ(connect_ip("127.0.0.4"), 0);
  // A new pod with the label joins the set; a deleted one leaves it.
  api.push("ADDED", peer_pod("db-1", "data", "db", "127.0.0.5"));
  EXPECT_TRUE(wait_until([&] { return connect_ip("127.0.0.5") == 0; }, 20s));
  api.push("DELETED", peer_pod("db-0", "data", "db", "127.0.0.4"));
  EXPECT_TRUE(wait_until([&] { return connect_ip("127.0.0.4") == EPERM; }, 20s));
  EXPECT_TRUE(has_denial("net_deny", [](const json& e) {
    return e["unmapped"]["palisade"]["enforcement"]["policy"] == "client" &&
           e["dst_endpoint"]["ip"] == "127.0.0.3";
  }));
}

TEST_F(EnforcementTest, ReadOnlyPathsRefuseWriteOpensInEnforceMode) {
  const std::string locked = make_cgroup("readonly");
  const fs::path conf = dir / "conf";
  fs::create_directories(conf / "sub");
  std::ofstream(conf / "app.conf") << "setting = 1\n";
  std::ofstream(conf / "sub" / "deep.conf") << "x\n";
  write_policy("ro",
               "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: ro}\n"
               "spec:\n  selector:\n    cgroups: [\"" +
                   locked + "\"]\n  mode: enforce\n  files:\n    readOnly: [" + conf.string() +
                   "]\n");
  start({"--canary-interval", "0"});
  auto open_in = [&](const fs::path& path, int flags) {
    const int status = in_cgroup(locked, [&] {
      const int fd = open(path.c_str(), flags | O_CLOEXEC, 0644);
      if (fd < 0) return errno;
      close(fd);
      return 0;
    });
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(open_in(conf / "app.conf", O_RDONLY), 0);
  EXPECT_EQ(open_in(conf / "app.conf", O_WRONLY), EPERM);
  EXPECT_EQ(open_in(conf / "app.conf", O_RDWR | O_APPEND), EPERM);
  EXPECT_EQ(open_in(conf / "sub" / "deep.conf", O_WRONLY | O_TRUNC), EPERM);
  EXPECT_EQ(slurp(conf / "app.conf"), "setting = 1\n");
  EXPECT_EQ(slurp(conf / "sub" / "deep.conf"), "x\n");
  // Outside the workload the same write goes through.
  { std::ofstream(conf / "app.conf", std::ios::app) << "setting = 2\n"; }
  EXPECT_EQ(slurp(conf / "app.conf"), "setting = 1\nsetting = 2\n");
  EXPECT_TRUE(has_denial("file_deny", [&](const json& e) {
    return e["file"]["path"] == (conf / "app.conf").string() &&
           e["unmapped"]["palisade"]["enforcement"]["reason"] == "read-only" &&
           e["unmapped"]["palisade"]["enforcement"]["policy"] == "ro" && e["action"] == "Denied";
  })) << slurp(dir / "events.jsonl").substr(0, 3000);
}

TEST_F(EnforcementTest, LsmMechanismRefusesExecWhereTheKernelAllowsIt) {
  const std::string lsm = agent::probe_bpf_lsm();
  if (lsm != "available") {
    GTEST_SKIP() << "BPF-LSM cannot be tested on this kernel: " << lsm
                 << " (the fanotify and kill mechanisms are tested instead)";
  }
  const std::string locked = make_cgroup("lsm");
  write_policy("locked", lockdown_policy("locked", locked, "enforce", 18081, 18091));
  start({"--exec-mechanism", "lsm"});
  const fs::path dropper = copy_of_true("dropper");
  EXPECT_EQ(WEXITSTATUS(exec_in(locked, {"/usr/bin/true"})), 0);
  EXPECT_EQ(WEXITSTATUS(exec_in(locked, {dropper.string()})), 126);
  EXPECT_TRUE(has_denial("exec_deny", [](const json& e) {
    return e["unmapped"]["palisade"]["enforcement"]["hook"] == "exec-lsm";
  }));
}

}  // namespace
}  // namespace palisade::testing

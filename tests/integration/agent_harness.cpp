#include "agent_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace palisade::testing {

using namespace std::chrono_literals;

void exec_argv(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(at);
  if (bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&at), &size) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(at.sin_port);
}

pid_t spawn(const std::vector<std::string>& argv, const fs::path& stderr_file) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* err = std::fopen(stderr_file.c_str(), "w");
    if (err != nullptr) dup2(fileno(err), 2);
    exec_argv(argv);
  }
  return pid;
}

int run_capture(const std::vector<std::string>& argv, std::string& out) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    // Only fd 1 may hold the pipe: a daemon the child starts (containerd) would otherwise keep
    // it open and the read below would never see its end.
    close(pipefd[0]);
    close(pipefd[1]);
    exec_argv(argv);
  }
  close(pipefd[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> json_lines(const fs::path& p) {
  std::vector<json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::vector<json> findings_in(const fs::path& file) {
  std::vector<json> out;
  for (auto& e : json_lines(file)) {
    if (e["class_uid"] == 2004) out.push_back(e);
  }
  return out;
}

std::vector<json> findings_of(const std::vector<json>& findings, const std::string& rule) {
  std::vector<json> out;
  for (const auto& f : findings) {
    if (f["unmapped"]["palisade"]["rule"] == rule) out.push_back(f);
  }
  return out;
}

const std::string kCli = PALISADE_CLI_PATH;

void AgentTest::SetUp() {
  if (geteuid() != 0) GTEST_SKIP() << "the agent needs root (CI runs as root)";
  dir = fs::path("/tmp") / ("palisade-it-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
}

void AgentTest::TearDown() {
  if (agent > 0) {
    kill(agent, SIGKILL);
    waitpid(agent, nullptr, 0);
  }
  // The agent pins its enforcement programs; a test leaves none behind.
  if (!harness_pins.empty()) {
    std::string out;
    run_capture({kCli, "agent", "--uninstall", "--pin-directory", harness_pins}, out);
  }
  fs::remove_all(dir);
}

void AgentTest::start_agent(std::vector<std::string> extra) {
  std::vector<std::string> argv = {kCli,
                                   "agent",
                                   "--no-stdout",
                                   "--json",
                                   (dir / "events.jsonl").string(),
                                   "--store",
                                   (dir / "events.db").string(),
                                   "--status-file",
                                   (dir / "status.json").string()};
  // Tests run side by side: an agent serves metrics only where a test asks for them.
  if (std::find(extra.begin(), extra.end(), "--metrics-port") == extra.end()) {
    argv.push_back("--no-metrics");
  }
  // Each test's enforcement is pinned apart from the host's (and removed at TearDown).
  if (std::find(extra.begin(), extra.end(), "--pin-directory") == extra.end()) {
    harness_pins = "/sys/fs/bpf/palisade-harness-" + std::to_string(getpid());
    argv.push_back("--pin-directory");
    argv.push_back(harness_pins);
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  agent = spawn(argv, dir / "agent.log");
  ASSERT_TRUE(wait_until([&] { return fs::exists(dir / "status.json"); }, 60s))
      << slurp(dir / "agent.log");
}

int AgentTest::stop_agent() {
  kill(agent, SIGTERM);
  int status = 0;
  waitpid(agent, &status, 0);
  agent = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace palisade::testing

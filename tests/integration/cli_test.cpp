// End-to-end: the real `palisade` binary with the real sensor. Output files, the store, status,
// SIGHUP reload with a bad file, SIGTERM flush, and record/replay through the same pipeline.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

const std::string kCli = PALISADE_CLI_PATH;

pid_t spawn(const std::vector<std::string>& argv, const fs::path& stderr_file) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* err = std::fopen(stderr_file.c_str(), "w");
    if (err != nullptr) dup2(fileno(err), 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int run_capture(const std::vector<std::string>& argv, std::string& out) {
  std::string cmd;
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
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

bool wait_until(const std::function<bool()>& pred, std::chrono::seconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the agent needs root (CI runs as root)";
    dir = fs::path("/tmp") / ("palisade-cli-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override {
    if (agent > 0) {
      kill(agent, SIGKILL);
      waitpid(agent, nullptr, 0);
    }
    fs::remove_all(dir);
  }

  void start_agent(std::vector<std::string> extra) {
    std::vector<std::string> argv = {kCli,        "agent",        "--no-stdout",
                                     "--json",    (dir / "events.jsonl").string(),
                                     "--store",   (dir / "events.db").string(),
                                     "--status-file", (dir / "status.json").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    agent = spawn(argv, dir / "agent.log");
    ASSERT_TRUE(wait_until([&] { return fs::exists(dir / "status.json"); }))
        << slurp(dir / "agent.log");
  }

  int stop_agent() {
    kill(agent, SIGTERM);
    int status = 0;
    waitpid(agent, &status, 0);
    agent = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  fs::path dir;
  pid_t agent = -1;
};

TEST_F(CliTest, AgentWritesJsonStoreAndStatusAndFlushesOnSigterm) {
  std::ofstream(dir / "agent.yaml") << "status:\n  interval_seconds: 1\n";
  start_agent({"--config", (dir / "agent.yaml").string(), "--record", (dir / "cap.bin").string()});
  const fs::path victim = dir / "victim";
  fs::create_directories(victim);
  for (int i = 0; i < 20; ++i) std::ofstream(victim / ("f" + std::to_string(i))) << i;
  std::string ignored;
  run_capture({"/bin/rm", "-rf", victim.string()}, ignored);

  // A bad configuration on SIGHUP is rejected; the agent keeps running on the previous one.
  std::ofstream(dir / "agent.yaml") << "status:\n  interval_secondz: 1\n";
  kill(agent, SIGHUP);
  ASSERT_TRUE(wait_until([&] {
    return slurp(dir / "agent.log").find("interval_secondz: unknown key") != std::string::npos;
  })) << slurp(dir / "agent.log");
  EXPECT_EQ(kill(agent, 0), 0) << "still running after a rejected reload";

  std::string status_text;
  EXPECT_EQ(run_capture({kCli, "agent", "status", "--status-file", (dir / "status.json").string()},
                        status_text),
            0);
  EXPECT_NE(status_text.find("state:      running"), std::string::npos) << status_text;
  EXPECT_NE(status_text.find("file"), std::string::npos);

  ASSERT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");

  // Every unlink reached the JSON file before exit.
  auto events = json_lines(dir / "events.jsonl");
  size_t unlinks = 0;
  bool saw_status = false;
  for (const auto& e : events) {
    if (e["class_uid"] == 0) saw_status = true;
    if (e["class_uid"] == 1001 && e["activity_id"] == 4 &&
        e["file"]["path"].get<std::string>().rfind(victim.string() + "/", 0) == 0) {
      unlinks++;
      EXPECT_EQ(e["actor"]["process"]["file"]["path"], fs::canonical("/bin/rm").string());
    }
  }
  EXPECT_EQ(unlinks, 20U);
  EXPECT_TRUE(saw_status);
  json last = events.back();
  EXPECT_EQ(last["message"], "palisade agent stopped");
  for (const auto& [cls, counters] : last["unmapped"]["palisade"]["events"].items()) {
    EXPECT_EQ(counters["lost"], 0) << cls;
  }

  // The store has the same deletions.
  std::string stored;
  ASSERT_EQ(run_capture({kCli, "events", "--db", (dir / "events.db").string(), "--exe", "*/rm",
                         "--class", "file"},
                        stored),
            0);
  EXPECT_EQ(std::count(stored.begin(), stored.end(), '\n'), 21) << "20 unlinks and one rmdir";

  // Replaying the capture through the same pipeline reproduces the deletions.
  std::string replayed;
  ASSERT_EQ(run_capture({kCli, "agent", "--replay", (dir / "cap.bin").string(), "--no-store",
                         "--status-file", (dir / "replay-status.json").string()},
                        replayed),
            0);
  std::istringstream lines(replayed);
  std::string line;
  size_t replayed_unlinks = 0;
  while (std::getline(lines, line)) {
    json e = json::parse(line);
    if (e["class_uid"] == 1001 && e["activity_id"] == 4 &&
        e["file"]["path"].get<std::string>().rfind(victim.string() + "/", 0) == 0) {
      replayed_unlinks++;
    }
  }
  EXPECT_EQ(replayed_unlinks, 20U);
}

TEST_F(CliTest, BadConfigurationFailsWithFileLineAndField) {
  std::ofstream(dir / "bad.yaml") << "sensor:\n  argv_max_bytes: -5\n";
  std::string out;
  std::vector<std::string> argv = {kCli, "agent", "--config", (dir / "bad.yaml").string(),
                                   "--check-config"};
  pid_t pid = spawn(argv, dir / "err.log");
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(slurp(dir / "err.log").find((dir / "bad.yaml").string() + ":2:19: sensor.argv_max_bytes"),
            std::string::npos)
      << slurp(dir / "err.log");
}

}  // namespace

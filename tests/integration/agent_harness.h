// What the end-to-end tests share: running the real `palisade` binary and other programs
// without a shell, reading what the agent wrote, and a fixture that starts and stops the agent.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace palisade::testing {

namespace fs = std::filesystem;
using nlohmann::json;

extern const std::string kCli;

// Replaces the calling (forked) process with argv, without a shell; exits 127 when it cannot.
[[noreturn]] void exec_argv(const std::vector<std::string>& argv);
pid_t spawn(const std::vector<std::string>& argv, const fs::path& stderr_file);
// A loopback TCP port nobody listens on now (0 when none could be had): the kernel's pick, for
// a server the test starts (the race with another process taking it meanwhile is harmless on
// a test machine).
uint16_t free_port();
int run_capture(const std::vector<std::string>& argv, std::string& out);
std::string slurp(const fs::path& p);
std::vector<json> json_lines(const fs::path& p);
bool wait_until(const std::function<bool()>& pred,
                std::chrono::seconds timeout = std::chrono::seconds(30));
std::vector<json> findings_in(const fs::path& file);
std::vector<json> findings_of(const std::vector<json>& findings, const std::string& rule);

// Root only (the agent loads eBPF); a fresh directory per test for every file the agent writes.
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  void start_agent(std::vector<std::string> extra);
  int stop_agent();

  fs::path dir;
  pid_t agent = -1;
  std::string harness_pins;  // where the agent pinned its enforcement, when the harness chose
};

}  // namespace palisade::testing

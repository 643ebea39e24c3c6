// Response actions against real processes and files.
#include "palisade/agent/respond.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace palisade::agent {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool alive(uint32_t pid) {
  // A zombie still answers kill(0): read its state.
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const auto close = stat.rfind(')');
  return close != std::string::npos && stat[close + 2] != 'Z';
}

TEST(Respond, KillsAWholeTreeIncludingGrandchildren) {
  // sh -> (sleep, sh -> sleep): three levels.
  pid_t root = fork();
  if (root == 0) {
    execl("/bin/sh", "sh", "-c", "sleep 60 & sh -c 'sleep 60 & wait' & wait", nullptr);
    _exit(127);
  }
  std::vector<uint32_t> tree;
  for (int i = 0; i < 200 && tree.size() < 3; ++i) {
    std::this_thread::sleep_for(10ms);
    tree = descendants_of(static_cast<uint32_t>(root));
  }
  ASSERT_GE(tree.size(), 3U) << "sleep, sh, and the inner sleep";
  KillReport report = kill_process(static_cast<uint32_t>(root), true);
  EXPECT_TRUE(report.failed.empty());
  EXPECT_EQ(report.killed.size(), tree.size() + 1);
  int status = 0;
  waitpid(root, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  std::this_thread::sleep_for(100ms);  // orphans are reaped by init
  for (uint32_t pid : tree) EXPECT_FALSE(alive(pid)) << pid;
}

TEST(Respond, RefusesInitAndItself) {
  EXPECT_TRUE(kill_process(1, true).killed.empty());
  EXPECT_TRUE(kill_process(static_cast<uint32_t>(getpid()), false).killed.empty());
}

class QuarantineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("palisade-quarantine-" + std::to_string(getpid()));
    fs::create_directories(dir / "data");
  }
  void TearDown() override {
    std::error_code ec;
    for (auto& p : fs::recursive_directory_iterator(dir, ec)) {
      fs::permissions(p.path(), fs::perms::owner_all, fs::perm_options::add, ec);
    }
    fs::remove_all(dir, ec);
  }
  fs::path dir;
};

TEST_F(QuarantineTest, MovesStripsRecordsAndRestores) {
  const fs::path file = dir / "data" / "dropper.sh";
  std::ofstream(file) << "abc";
  fs::permissions(file, fs::perms(0750), fs::perm_options::replace);
  const std::string vault = (dir / "quarantine").string();
  QuarantineRecord r = quarantine_file(file.string(), vault);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(r.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(r.mode, 0750U);
  EXPECT_EQ(r.size, 3U);
  EXPECT_EQ(fs::status(r.quarantined_path).permissions(), fs::perms::none);
  EXPECT_EQ(fs::status(vault).permissions(), fs::perms::owner_all);
  ASSERT_EQ(quarantined_files(vault).size(), 1U);
  EXPECT_EQ(quarantined_files(vault)[0].original_path, file.string());

  QuarantineRecord back = restore_file(file.string(), vault);
  EXPECT_EQ(back.sha256, r.sha256);
  EXPECT_TRUE(fs::exists(file));
  EXPECT_EQ(fs::status(file).permissions(), fs::perms(0750));
  EXPECT_TRUE(quarantined_files(vault).empty());
}

TEST_F(QuarantineTest, RefusesWhatItMustNotTouch) {
  const std::string vault = (dir / "quarantine").string();
  fs::create_symlink("/etc/passwd", dir / "data" / "link");
  EXPECT_THROW(quarantine_file((dir / "data" / "link").string(), vault), std::runtime_error)
      << "a symlink is not followed";
  EXPECT_TRUE(fs::exists("/etc/passwd"));
  EXPECT_THROW(quarantine_file((dir / "data").string(), vault), std::runtime_error);
  EXPECT_THROW(restore_file((dir / "data" / "never").string(), vault), std::runtime_error);
  const fs::path file = dir / "data" / "x";
  std::ofstream(file) << "x";
  quarantine_file(file.string(), vault);
  std::ofstream(file) << "new";
  EXPECT_THROW(restore_file(file.string(), vault), std::runtime_error)
      << "an occupied path is not overwritten";
}

}  // namespace
}  // namespace palisade::agent

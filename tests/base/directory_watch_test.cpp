#include "palisade/base/directory_watch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace palisade::base {
namespace {

namespace fs = std::filesystem;

class DirectoryWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("watch-test-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  // What the kubelet does to a ConfigMap volume: the files point through "..data" at a
  // timestamped directory; an update writes a new one and renames a new "..data" over the old.
  void kubelet_update(const std::string& version, const std::string& text) {
    const fs::path data = dir / ("..2026_12_04_" + version);
    fs::create_directory(data);
    std::ofstream(data / "agent.yaml") << text;
    fs::create_symlink(data.filename(), dir / "..data_tmp");
    fs::rename(dir / "..data_tmp", dir / "..data");
    if (!fs::exists(dir / "agent.yaml", ec))
      fs::create_symlink("..data/agent.yaml", dir / "agent.yaml");
  }

  fs::path dir;
  std::error_code ec;
};

bool config_only(std::string_view name) {
  return name == "agent.yaml" || is_kubelet_swap(name);
}

TEST_F(DirectoryWatchTest, SeesTheKubeletsAtomicSwapOfAConfigMap) {
  kubelet_update("1", "log_level: info\n");
  DirectoryWatch watch({{dir.string(), config_only}});
  EXPECT_FALSE(watch.changed());
  kubelet_update("2", "log_level: debug\n");
  EXPECT_TRUE(watch.changed());
  EXPECT_FALSE(watch.changed()) << "drained";
}

TEST_F(DirectoryWatchTest, AFileWrittenInPlaceCountsAndItsNeighboursDoNot) {
  DirectoryWatch watch({{dir.string(), config_only}});
  std::ofstream(dir / "status.json") << "{}";
  std::ofstream(dir / "events.jsonl") << "{}\n";
  EXPECT_FALSE(watch.changed()) << "files the agent writes beside its configuration";
  std::ofstream(dir / "agent.yaml") << "log_level: debug\n";
  EXPECT_TRUE(watch.changed());
  fs::remove(dir / "agent.yaml");
  EXPECT_TRUE(watch.changed());
}

TEST_F(DirectoryWatchTest, ADirectoryThatAppearsLaterIsWatchedThen) {
  const fs::path later = dir / "policies";
  DirectoryWatch watch({{later.string(), nullptr}});
  EXPECT_TRUE(watch.watched().empty());
  fs::create_directory(later);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_TRUE(watch.changed()) << "its files are new to the watcher";
  EXPECT_EQ(watch.watched(), std::vector<std::string>{later.string()});
  std::ofstream(later / "rules.yaml") << "x";
  EXPECT_TRUE(watch.changed());
  fs::remove_all(later);
  EXPECT_TRUE(watch.changed());
  EXPECT_TRUE(watch.watched().empty());
}

}  // namespace
}  // namespace palisade::base

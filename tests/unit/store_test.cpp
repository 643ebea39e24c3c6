#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "palisade/agent/pipeline.h"
#include "palisade/runtime/event_store.h"
#include "test_records.h"

namespace palisade::agent {
namespace {

using namespace testing;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("palisade-store-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    path = (dir / "events.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  void record_session(runtime::EventStore& store) {
    ProcessTable table;
    Pipeline pipeline(table, {&store});
    pipeline.set_wall_offset_ns(1'700'000'000'000'000'000LL);
    pipeline.handle(snapshot_record(1, 0, 0, "/sbin/init"));
    pipeline.handle(snapshot_record(10, 1, 1'000'000'000, "/usr/sbin/sshd"));
    pipeline.handle(exec_record(20, 10, 2'000'000'000, "/bin/bash", {"bash"}, 2'000'000'000));
    pipeline.handle(fork_record(20, 2'000'000'000, 30, 3'000'000'000, 3'000'000'000));
    pipeline.handle(
        exec_record(30, 20, 3'000'000'000, "/usr/bin/rm", {"rm", "-rf", "/data"}, 3'000'000'000));
    for (int i = 0; i < 50; ++i) {
      pipeline.handle(RecordBuilder(PAL_FILE_UNLINK)
                          .task(30, 20, 3'000'000'000, "rm")
                          .time(4'000'000'000ULL + static_cast<uint64_t>(i))
                          .seq(0, static_cast<uint64_t>(i) + 1)
                          .str(0, "/data/f" + std::to_string(i))
                          .build());
    }
  }

  std::filesystem::path dir;
  std::string path;
};

TEST_F(StoreTest, QueriesByPidExeClassAndTime) {
  {
    runtime::EventStore store(runtime::StoreOptions{.path = path},
                              std::make_shared<ocsf::Formatter>(ocsf::HostInfo{}));
    record_session(store);
    store.drain();
  }
  runtime::EventReader reader(path);
  runtime::EventQuery by_pid;
  by_pid.pid = 30;
  EXPECT_EQ(reader.events(by_pid).size(), 52U);  // fork, exec, 50 unlinks
  runtime::EventQuery by_exe;
  by_exe.exe = "*/rm";
  by_exe.class_uid = 1001;
  auto deletions = reader.events(by_exe);
  ASSERT_EQ(deletions.size(), 50U);
  auto first = nlohmann::json::parse(deletions.front());
  EXPECT_EQ(first["file"]["path"], "/data/f0");
  runtime::EventQuery late;
  late.since_ms = 1'700'000'000'000ULL + 3'500;
  EXPECT_EQ(reader.events(late).size(), 50U);
}

TEST_F(StoreTest, AncestryAndDescendants) {
  {
    runtime::EventStore store(runtime::StoreOptions{.path = path},
                              std::make_shared<ocsf::Formatter>(ocsf::HostInfo{}));
    record_session(store);
  }  // destruction drains: nothing accepted is lost
  runtime::EventReader reader(path);
  auto chain = reader.ancestry(30);
  ASSERT_EQ(chain.size(), 4U);
  EXPECT_EQ(chain[0].exe, "/usr/bin/rm");
  EXPECT_EQ(chain[1].exe, "/bin/bash");
  EXPECT_EQ(chain[2].exe, "/usr/sbin/sshd");
  EXPECT_EQ(chain[3].exe, "/sbin/init");
  auto tree = reader.descendants(10);
  ASSERT_EQ(tree.size(), 3U);
  EXPECT_EQ(tree[1].pid, 20U);
  EXPECT_EQ(tree[2].pid, 30U);
}

TEST_F(StoreTest, RetentionDropsEventsOlderThanMaxAge) {
  {
    runtime::StoreOptions options{.path = path};
    options.max_age_seconds = 3600;
    options.prune_interval_ms = 0;  // prune after every batch
    runtime::EventStore store(options, std::make_shared<ocsf::Formatter>(ocsf::HostInfo{}));
    record_session(store);  // timestamps from 2023: far older than an hour
    store.drain();
  }
  runtime::EventReader reader(path);
  EXPECT_TRUE(reader.events(runtime::EventQuery{}).empty());
}

}  // namespace
}  // namespace palisade::agent

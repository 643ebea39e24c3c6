// The event store at open: created private, a damaged file never used or half-read, every
// error naming the file.
#include "palisade/runtime/event_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "palisade/base/error.h"

namespace palisade::runtime {
namespace {

namespace fs = std::filesystem;

class EventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("palisade-store-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    options_.path = (dir_ / "events.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `count` audit records and closes the store.
  void fill(size_t count) const {
    EventStore store(options_, nullptr);
    const std::string padding(200, 'x');
    for (size_t i = 0; i < count; ++i) {
      const std::string json =
          R"({"class_uid":7001,"n":)" + std::to_string(i) + R"(,"p":")" + padding + R"("})";
      OutOfBandRecord r;
      r.json = json;
      r.class_uid = 7001;
      r.time_ms = static_cast<int64_t>(i);
      store.write_record(r);
    }
    store.drain();
  }

  std::vector<fs::path> moved_aside() const {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      if (entry.path().filename().string().rfind("events.db.damaged-", 0) == 0 &&
          entry.path().string().find("-wal") == std::string::npos &&
          entry.path().string().find("-shm") == std::string::npos) {
        out.push_back(entry.path());
      }
    }
    return out;
  }

  fs::path dir_;
  StoreOptions options_;
};

TEST_F(EventStoreTest, TheStoreIsCreatedReadableByItsOwnerOnly) {
  fill(1);
  struct stat st {};
  ASSERT_EQ(stat(options_.path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
}

TEST_F(EventStoreTest, AFileThatIsNotADatabaseIsMovedAsideAndAFreshStoreStarts) {
  std::ofstream(options_.path) << std::string(8192, 'g');
  {
    EventStore store(options_, nullptr);
    OutOfBandRecord r;
    r.json = R"({"class_uid":7001})";
    r.class_uid = 7001;
    store.write_record(r);
    store.drain();
    const nlohmann::json status = store.status();
    ASSERT_TRUE(status.contains("damaged_store_moved_to")) << status.dump();
    EXPECT_EQ(status["written"], 1);
  }
  ASSERT_EQ(moved_aside().size(), 1U);
  EXPECT_EQ(fs::file_size(moved_aside()[0]), 8192U) << "the damaged file is kept as it was";
  EXPECT_EQ(EventReader(options_.path).events(EventQuery{}).size(), 1U);
}

TEST_F(EventStoreTest, GarbageInTheMiddleIsRefusedByTheReaderAndMovedAsideByTheWriter) {
  fill(2000);
  const auto size = fs::file_size(options_.path);
  ASSERT_GT(size, 64U * 1024);
  {
    std::fstream file(options_.path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(size / 2 / 4096 * 4096));
    file << std::string(4096, '\x5a');
  }
  try {
    EventReader reader(options_.path);
    EventQuery all;
    all.limit = 100000;
    const auto events = reader.events(all);
    FAIL() << "a damaged store was read: " << events.size() << " of 2000 events";
  } catch (const EnvironmentError& e) {
    EXPECT_NE(std::string(e.what()).find(options_.path), std::string::npos) << e.what();
  }
  EventStore store(options_, nullptr);
  EXPECT_TRUE(store.status().contains("damaged_store_moved_to"));
  EXPECT_EQ(moved_aside().size(), 1U);
}

TEST_F(EventStoreTest, AStoreThatCannotBeOpenedNamesItsFile) {
  std::ofstream(dir_ / "a-file") << "x";
  options_.path = (dir_ / "a-file" / "events.db").string();
  try {
    EventStore store(options_, nullptr);
    FAIL() << "opened a store below a regular file";
  } catch (const EnvironmentError& e) {
    EXPECT_NE(std::string(e.what()).find(options_.path), std::string::npos) << e.what();
  }
  try {
    EventReader reader((dir_ / "missing.db").string());
    FAIL() << "read a missing store";
  } catch (const EnvironmentError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.db"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace palisade::runtime

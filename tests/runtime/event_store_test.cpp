// The event store at open: created private, a damaged file never used or half-read, every
// error naming the file.
#include "palisade/runtime/event_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "palisade/base/error.h"
#include "palisade/model/event.h"

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

// A small ext4 image on a loop device: the kind of filesystem where a full disk used to reach
// SQLite's mapped WAL index (SIGBUS). Root only.
class SmallFilesystem {
 public:
  explicit SmallFilesystem(const fs::path& dir) : image_(dir / "small.img"), mount_(dir / "small") {
    fs::create_directories(mount_);
    { std::ofstream(image_).close(); }
    fs::resize_file(image_, 4U << 20);
    mounted_ = run({"mkfs.ext4", "-q", "-F", image_.string()}) == 0 &&
               run({"mount", "-o", "loop", image_.string(), mount_.string()}) == 0;
  }
  ~SmallFilesystem() {
    if (mounted_) run({"umount", mount_.string()});
  }
  bool mounted() const { return mounted_; }
  fs::path path() const { return mount_; }

 private:
  static int run(const std::vector<std::string>& argv) {
    const pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> args;
      args.reserve(argv.size() + 1);
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      execvp(args[0], args.data());
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  fs::path image_, mount_;
  bool mounted_ = false;
};

// `count` events (half of them execs, which also write the process table) into the store.
StoreStats storm(EventStore& store, size_t count) {
  const std::string ocsf = R"({"class_uid":1007,"p":")" + std::string(300, 'x') + R"("})";
  for (size_t i = 0; i < count; ++i) {
    Event event;
    event.kind = i % 2 == 0 ? EventKind::kProcessExec : EventKind::kFileOpen;
    event.wall_ns = 1'000'000ULL * (i + 1);
    auto view = std::make_shared<ProcessView>();
    view->pid = static_cast<uint32_t>(1000 + i);
    view->start_ns = i;
    view->exe = "/usr/bin/storm";
    view->cmdline = "storm " + std::to_string(i);
    event.process = view;
    store.consume(event, ocsf);
  }
  store.drain();
  return store.stats();
}

// The counters are the truth about the rows: on a filesystem that fills up mid-storm, every
// event is either a committed row or counted as not written, by reason, and the agent lives.
TEST_F(EventStoreTest, OnAFullFilesystemTheCountersMatchTheRows) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a small filesystem";
  const SmallFilesystem small(dir_);
  ASSERT_TRUE(small.mounted()) << "mkfs.ext4 or a loop device is missing";
  options_.path = (small.path() / "events.db").string();
  options_.batch_size = 64;
  options_.min_free_bytes = 1U << 20;
  constexpr size_t kEvents = 20000;
  StoreStats stats;
  nlohmann::json status;
  {
    EventStore store(options_, nullptr);
    stats = storm(store, kEvents);
    status = store.status();
  }
  EXPECT_GT(stats.dropped_low_space, 0U) << "the filesystem never filled: " << status.dump();
  EXPECT_EQ(stats.written + stats.not_written, kEvents) << status.dump();
  EXPECT_EQ(status["not_written_by_reason"]["low_disk_space"], stats.dropped_low_space);
  EXPECT_TRUE(status.contains("paused")) << status.dump();
  EventQuery all;
  all.limit = kEvents * 2;
  EXPECT_EQ(EventReader(options_.path).events(all).size(), stats.written) << status.dump();

  // Opened on a filesystem that is already full: it waits for space, it does not fail or crash,
  // and it writes again once there is space.
  const fs::path filler = small.path() / "filler";
  {
    std::ofstream out(filler, std::ios::binary);
    const std::string block(64 << 10, 'f');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  EventStore again(options_, nullptr);
  const StoreStats full = storm(again, 100);
  EXPECT_EQ(full.written, 0U);
  EXPECT_EQ(full.dropped_low_space, 100U);
  EXPECT_NE(again.status().value("paused", "").find("bytes free"), std::string::npos);
  fs::remove(filler);
  const StoreStats freed = storm(again, 100);
  EXPECT_EQ(freed.written, 100U) << again.status().dump();
  EXPECT_FALSE(again.status().contains("paused"));
}

}  // namespace
}  // namespace palisade::runtime

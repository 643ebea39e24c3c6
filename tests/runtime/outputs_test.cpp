#include "palisade/runtime/outputs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "palisade/base/error.h"
#include "palisade/base/private_files.h"
#include "palisade/runtime/json_lines_sink.h"
#include "palisade/runtime/status_file.h"

namespace palisade::runtime {
namespace {

namespace fs = std::filesystem;

class OutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("palisade-outputs-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  OutputSettings file_and_store() const {
    OutputSettings s;
    s.stdout_enabled = false;
    s.json_file = (dir_ / "events.json").string();
    s.store.path = (dir_ / "events.db").string();
    return s;
  }

  static std::string read(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  fs::path dir_;
};

TEST_F(OutputsTest, TheBuiltInKindsAreRegisteredInTheOrderTheyOpen) {
  const std::vector<std::string> names = output_kind_names();
  ASSERT_GE(names.size(), 3U);
  EXPECT_EQ(names[0], "stdout");
  EXPECT_EQ(names[1], "file");
  EXPECT_EQ(names[2], "store");
}

TEST_F(OutputsTest, OpensExactlyTheKindsTheSettingsTurnOn) {
  OutputSettings none;
  none.stdout_enabled = false;
  none.store_enabled = false;
  EXPECT_TRUE(Outputs(none, nullptr).names().empty());

  Outputs outputs(file_and_store(), nullptr);
  EXPECT_EQ(outputs.names(), (std::vector<std::string>{"file", "store"}));
  EXPECT_EQ(outputs.sinks().size(), 2U);
}

TEST_F(OutputsTest, AuditRecordsGoEverywhereAndStatusEventsAreNotStored) {
  const OutputSettings settings = file_and_store();
  {
    Outputs outputs(settings, nullptr);
    outputs.write_audit({{"class_uid", 7003}, {"time", 1700000000000}, {"activity_id", 3}}, 42,
                        "/usr/bin/miner", 0);
    OutOfBandRecord status;
    status.kind = OutOfBandRecord::Kind::kStatus;
    status.json = R"({"class_uid":6002,"time":1700000000001})";
    outputs.write_record(status);
    outputs.drain();
    const nlohmann::json counters = outputs.status();
    EXPECT_EQ(counters["file"]["lines"], 2);
    EXPECT_EQ(counters["store"]["written"], 1);
    EXPECT_EQ(counters["store"]["path"], settings.store.path);
  }
  struct stat st {};
  ASSERT_EQ(stat(settings.json_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U) << "the stream holds every command line on the host";
  const std::string lines = read(settings.json_file);
  EXPECT_NE(lines.find("\"class_uid\":7003"), std::string::npos);
  EXPECT_NE(lines.find("\"class_uid\":6002"), std::string::npos);
  EventReader reader(settings.store.path);
  const std::vector<std::string> stored = reader.events(EventQuery{});
  ASSERT_EQ(stored.size(), 1U);
  EXPECT_NE(stored[0].find("\"class_uid\":7003"), std::string::npos);
}

// With a reader group (file_group), what the agent creates is 0640 and that group's; the
// status file too. Without one (above), 0600.
TEST_F(OutputsTest, FilesAreSharedWithTheReaderGroupOnlyWhenOneIsNamed) {
  const gid_t group = base::group_id("daemon", "test");
  base::set_reader_group(group);
  const OutputSettings settings = file_and_store();
  {
    Outputs outputs(settings, nullptr);
    outputs.write_audit({{"class_uid", 7001}, {"n", 1}});
    outputs.drain();
  }
  const std::string status = (dir_ / "status.json").string();
  ASSERT_TRUE(write_status_file(status, {{"state", "running"}}));
  base::set_reader_group(std::nullopt);
  for (const std::string& path : {settings.json_file, settings.store.path, status}) {
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 0777, 0640U) << path;
    EXPECT_EQ(st.st_gid, group) << path;
  }
  EXPECT_THROW(base::group_id("no-such-group-palisade", "file_group"), ConfigurationError);
}

// A JSON output whose writes fail (/dev/full: ENOSPC on every write) counts the lines it lost.
TEST_F(OutputsTest, LinesAFailedWriteLostAreCounted) {
  auto sink = JsonLinesSink::open_file("/dev/full", nullptr);
  for (int i = 0; i < 3; ++i) {
    OutOfBandRecord record;
    record.json = R"({"class_uid":7001})";
    sink->write_record(record);
  }
  const nlohmann::json status = sink->status();
  EXPECT_EQ(status["lines"], 3);
  EXPECT_EQ(status["not_written"], 3);
  EXPECT_EQ(status["write_errors"], 3);
}

TEST_F(OutputsTest, ReopenFollowsARotatedFileAndKeepsTheOldOneWhenThePathIsGone) {
  const OutputSettings settings = file_and_store();
  Outputs outputs(settings, nullptr);
  outputs.write_audit({{"class_uid", 7001}, {"n", 1}});
  fs::rename(settings.json_file, dir_ / "events.json.1");
  outputs.reopen();
  outputs.write_audit({{"class_uid", 7001}, {"n", 2}});
  EXPECT_NE(read(dir_ / "events.json.1").find("\"n\":1"), std::string::npos);
  EXPECT_EQ(read(settings.json_file).find("\"n\":1"), std::string::npos);
  EXPECT_NE(read(settings.json_file).find("\"n\":2"), std::string::npos);

  // The directory goes away: the reopen fails (logged) and lines still reach the open file.
  fs::rename(settings.json_file, dir_ / "events.json.2");
  fs::path moved = dir_.string() + "-moved";
  fs::remove_all(moved);
  fs::rename(dir_, moved);
  outputs.reopen();
  outputs.write_audit({{"class_uid", 7001}, {"n", 3}});
  EXPECT_NE(read(moved / "events.json.2").find("\"n\":3"), std::string::npos);
  fs::rename(moved, dir_);
}

TEST_F(OutputsTest, AnOutputThatCannotOpenNamesItsPath) {
  OutputSettings settings;
  settings.stdout_enabled = false;
  settings.store_enabled = false;
  settings.json_file = (dir_ / "missing" / "events.json").string();
  try {
    Outputs outputs(settings, nullptr);
    FAIL() << "opened a file in a missing directory";
  } catch (const EnvironmentError& e) {
    EXPECT_NE(std::string(e.what()).find(settings.json_file), std::string::npos) << e.what();
  }
}

// An exporter registers its kind once; it opens after the built-in kinds when its settings say.
class CountingOutput : public Output {
 public:
  explicit CountingOutput(int& records) : records_(records) {}
  void consume(const Event&, std::string_view) override {}
  void write_record(const OutOfBandRecord&) override { records_++; }
  nlohmann::json status() const override { return {{"records", records_}}; }

 private:
  int& records_;
};

TEST_F(OutputsTest, AKindRegisteredByAnotherComponentIsBuiltByName) {
  static int records = 0;
  // Turned on by a store path no other test uses, so that it stays out of the other tests' way.
  register_output_kind({"counting", [](const OutputSettings& s) { return s.store.path == "count"; },
                        [](const OutputSettings&, const std::shared_ptr<ocsf::Formatter>&) {
                          return std::make_unique<CountingOutput>(records);
                        }});
  EXPECT_THROW(register_output_kind({"counting", nullptr, nullptr}), InvariantError);
  OutputSettings settings;
  settings.stdout_enabled = false;
  settings.store_enabled = false;
  settings.store.path = "count";
  Outputs outputs(settings, nullptr);
  EXPECT_EQ(outputs.names(), (std::vector<std::string>{"counting"}));
  outputs.write_audit({{"class_uid", 7001}});
  EXPECT_EQ(records, 1);
  EXPECT_EQ(outputs.status()["counting"]["records"], 1);
}

}  // namespace
}  // namespace palisade::runtime

// The behaviour the refactoring of the event model and runtime must not change: a recorded capture
// (tests/golden/workload.palcap, made by scripts/record-golden-capture.sh) replayed through the
// production pipeline and the shipped rules must give, byte for byte, the OCSF events and findings
// in tests/golden/workload.ocsf.jsonl. Everything that would differ between machines is fixed: the
// host, the run id, the clock offsets (from the capture) and the executable hashes.
// PALISADE_UPDATE_GOLDEN=1 rewrites the expected file instead (review the diff before committing).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "palisade/agent/capture.h"
#include "palisade/agent/pipeline.h"
#include "palisade/agent/process_table.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/ocsf/reader.h"
#include "palisade/runtime/detector.h"

namespace palisade::agent {
namespace {

const std::string kGoldenDir = std::string(PALISADE_SOURCE_DIR) + "/tests/golden";

// Collects every event and finding line in the order the outputs would write them.
class CollectingSink : public runtime::EventSink {
 public:
  void consume(const Event&, std::string_view ocsf) override { append(ocsf); }
  void consume_finding(std::string_view finding, const Event&) override { append(finding); }
  const std::string& text() const { return text_; }

 private:
  void append(std::string_view line) {
    text_.append(line);
    text_.push_back('\n');
  }
  std::string text_;
};

std::string replay(const std::string& capture) {
  RecordedSource source(capture);
  ocsf::HostInfo host;
  host.hostname = "golden-node";
  host.machine_id = "0123456789abcdef0123456789abcdef";
  host.kernel_release = "6.18.0-golden";
  host.boot_wall_offset_ns = source.header().boot_wall_offset_ns;
  host.run_id = "golden";
  auto formatter = std::make_shared<ocsf::Formatter>(host);

  CollectingSink sink;
  runtime::Detector detector(formatter, {&sink});
  std::vector<policies::Diagnostic> errors;
  auto policy = policies::PolicySet::compile(policies::default_rule_sources(), errors);
  EXPECT_TRUE(policy) << (errors.empty() ? std::string() : errors.front().to_string());
  if (!policy) return {};
  policy->set_hostname(host.hostname);
  detector.set_policy(policy);
  // The executables of the recording machine are not this one's: a hash that names the path.
  policy->set_executable_hasher(
      [](const Event& exec) { return "hash-of:" + (exec.process ? exec.process->exe : exec.exe); });

  ProcessTable table;
  Pipeline pipeline(table, {&sink, &detector});
  pipeline.set_formatter(formatter);
  pipeline.set_wall_offset_ns(source.header().wall_offset_ns);
  const RecordCallback deliver = [&pipeline](RecordView record) { pipeline.handle(record); };
  while (source.poll(std::chrono::milliseconds(0), deliver)) {
  }
  pipeline.flush();
  return sink.text();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The golden events read back (ocsf::event_from_ocsf, driven by the field declaration) and
// written again: what a replay of a JSON log (`palisade policy test --events`) sees.
std::string reread(const std::string& ocsf_lines) {
  ocsf::HostInfo host;
  host.hostname = "golden-node";
  host.machine_id = "0123456789abcdef0123456789abcdef";
  host.kernel_release = "6.18.0-golden";
  host.run_id = "golden";
  ocsf::Formatter formatter(host);
  std::istringstream in(ocsf_lines);
  std::string line;
  std::string out;
  while (std::getline(in, line)) {
    const std::optional<Event> event = ocsf::event_from_ocsf(nlohmann::json::parse(line));
    if (!event) continue;
    formatter.format(*event, out);
    out.push_back('\n');
  }
  return out;
}

// Line by line, so that a difference names the first event that changed. With
// PALISADE_UPDATE_GOLDEN set, rewrites the expected file instead and skips the test.
void expect_golden(const std::string& actual, const std::string& expected_path) {
  if (std::getenv("PALISADE_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(expected_path) << actual;
    GTEST_SKIP() << "rewrote " << expected_path;
  }
  const std::string expected = read_file(expected_path);
  ASSERT_FALSE(expected.empty()) << expected_path << " is missing";
  std::istringstream a(actual);
  std::istringstream e(expected);
  std::string actual_line;
  std::string expected_line;
  size_t line = 0;
  while (true) {
    const bool more_actual = static_cast<bool>(std::getline(a, actual_line));
    const bool more_expected = static_cast<bool>(std::getline(e, expected_line));
    line++;
    if (!more_actual && !more_expected) break;
    ASSERT_EQ(more_actual, more_expected) << "line " << line << ": one output ends early";
    ASSERT_EQ(actual_line, expected_line) << "line " << line << " of " << expected_path;
  }
}

TEST(GoldenReplay, RecordedCaptureGivesTheSameOcsfOutput) {
  const std::string actual = replay(kGoldenDir + "/workload.palcap");
  ASSERT_FALSE(actual.empty());
  const std::string expected_path = kGoldenDir + "/workload.ocsf.jsonl";
  expect_golden(actual, expected_path);
}

// Reading the agent's own output back loses only what the reader documents it does not replay;
// tests/golden/workload.reread.jsonl is the golden output read back and written again.
TEST(GoldenReplay, TheGoldenOutputReadBackGivesTheSameEvents) {
  const std::string actual = reread(read_file(kGoldenDir + "/workload.ocsf.jsonl"));
  ASSERT_FALSE(actual.empty());
  const std::string expected_path = kGoldenDir + "/workload.reread.jsonl";
  expect_golden(actual, expected_path);
}

// The capture is worth its place only if it exercises every class and trips rules.
TEST(GoldenReplay, CaptureCoversEveryClassAndRaisesFindings) {
  const std::string actual = replay(kGoldenDir + "/workload.palcap");
  for (const char* class_uid :
       {"\"class_uid\":1007", "\"class_uid\":1001", "\"class_uid\":4001", "\"class_uid\":2004"}) {
    EXPECT_NE(actual.find(class_uid), std::string::npos) << class_uid;
  }
}

}  // namespace
}  // namespace palisade::agent

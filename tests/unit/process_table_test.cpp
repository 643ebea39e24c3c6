#include "palisade/agent/process_table.h"

#include <gtest/gtest.h>

#include "palisade/agent/pipeline.h"
#include "test_records.h"

namespace palisade::agent {
namespace {

using namespace testing;

constexpr uint64_t kSecond = 1'000'000'000ULL;

class Collector : public runtime::EventSink {
 public:
  void consume(const Event& event, std::string_view) override { events.push_back(event); }
  std::vector<Event> events;
};

class ProcessTableTest : public ::testing::Test {
 protected:
  void feed(const std::vector<std::byte>& record) { pipeline.handle(record); }
  const Event& last() { return sink.events.back(); }

  ProcessTable table{ProcessTableLimits{
      .max_entries = 1000, .max_bytes = 1U << 20, .linger_ns = 5 * kSecond, .max_lineage = 64}};
  Collector sink;
  Pipeline pipeline{table, {&sink}};
};

TEST_F(ProcessTableTest, SeedsAncestryFromSnapshotForProcessesStartedBeforeAgent) {
  feed(snapshot_record(1, 0, 0, "/sbin/init"));
  feed(snapshot_record(100, 1, 10 * kSecond, "/usr/sbin/sshd"));
  feed(snapshot_record(200, 100, 20 * kSecond, "/bin/bash"));
  feed(exec_record(300, 200, 30 * kSecond, "/usr/bin/rm", {"rm", "-rf", "/data"}));
  const Event& e = last();
  ASSERT_EQ(e.lineage.size(), 3U);
  EXPECT_EQ(e.lineage[0]->exe, "/bin/bash");
  EXPECT_EQ(e.lineage[0]->pid, 200U);
  EXPECT_EQ(e.lineage[1]->exe, "/usr/sbin/sshd");
  EXPECT_EQ(e.lineage[2]->exe, "/sbin/init");
  EXPECT_TRUE(e.lineage_complete);
  EXPECT_EQ(e.parent->exe, "/bin/bash");
  EXPECT_EQ(e.process->cmdline, "rm -rf /data");
}

TEST_F(ProcessTableTest, ForkInheritsParentImageUntilExec) {
  feed(snapshot_record(1, 0, 0, "/sbin/init"));
  feed(snapshot_record(10, 1, kSecond, "/bin/bash"));
  feed(fork_record(10, kSecond, 11, 2 * kSecond));
  EXPECT_EQ(last().process->pid, 11U);
  EXPECT_EQ(last().process->exe, "/bin/bash");
  EXPECT_EQ(last().parent->pid, 10U);
  feed(exec_record(11, 10, 2 * kSecond, "/usr/bin/id", {"id"}));
  EXPECT_EQ(table.find(11)->exe, "/usr/bin/id");
  EXPECT_EQ(last().lineage.front()->exe, "/bin/bash");
}

TEST_F(ProcessTableTest, ReusedPidIsNotMistakenForAnOlderChildsParent) {
  feed(snapshot_record(1, 0, 0, "/sbin/init"));
  feed(snapshot_record(50, 1, 1 * kSecond, "/usr/bin/parent"));
  feed(snapshot_record(60, 50, 2 * kSecond, "/usr/bin/child"));
  // The parent exits; pid 50 is reused by an unrelated process started later.
  feed(exit_record(50, 1 * kSecond, 0, 3 * kSecond));
  feed(exec_record(50, 1, 4 * kSecond, "/usr/bin/stranger", {"stranger"}));
  feed(exec_record(60, 50, 2 * kSecond, "/usr/bin/child2", {"child2"}, 5 * kSecond));
  const Event& e = last();
  EXPECT_TRUE(e.lineage.empty()) << "the ancestry stops rather than naming the wrong parent";
  EXPECT_FALSE(e.lineage_complete);
}

TEST_F(ProcessTableTest, ExitedProcessLingersThenGoes) {
  feed(snapshot_record(1, 0, 0, "/sbin/init"));
  feed(exec_record(70, 1, kSecond, "/bin/true", {"true"}, kSecond));
  feed(exit_record(70, kSecond, 0, 2 * kSecond));
  EXPECT_NE(table.find(70), nullptr) << "lingers for late lookups";
  feed(exec_record(71, 1, 10 * kSecond, "/bin/false", {"false"}, 10 * kSecond));
  EXPECT_EQ(table.find(70), nullptr) << "gone after the linger window";
  EXPECT_EQ(table.stats().evicted_exited, 1U);
}

TEST_F(ProcessTableTest, ExitedParentStaysWhileDescendantsLive) {
  feed(snapshot_record(1, 0, 0, "/sbin/init"));
  feed(exec_record(80, 1, kSecond, "/bin/sh", {"sh"}, kSecond));
  feed(fork_record(80, kSecond, 81, 2 * kSecond, 2 * kSecond));
  feed(exit_record(80, kSecond, 0, 3 * kSecond));
  feed(exec_record(90, 1, 20 * kSecond, "/bin/other", {"other"}, 20 * kSecond));
  ASSERT_NE(table.find(80), nullptr) << "the child still needs its parent for ancestry";
  feed(exec_record(81, 80, 2 * kSecond, "/bin/daemon", {"daemon"}, 21 * kSecond));
  EXPECT_EQ(last().lineage.front()->exe, "/bin/sh");
  feed(exit_record(81, 2 * kSecond, 0, 22 * kSecond));
  feed(exec_record(91, 1, 40 * kSecond, "/bin/late", {"late"}, 40 * kSecond));
  EXPECT_EQ(table.find(81), nullptr);
  EXPECT_EQ(table.find(80), nullptr) << "goes once its last descendant has gone";
}

TEST_F(ProcessTableTest, ExecWhoseForkWasNeverSeenLinksToItsParent) {
  feed(snapshot_record(1, 0, 0, "/sbin/init"));
  feed(snapshot_record(10, 1, kSecond, "/usr/sbin/cron"));
  // The fork was lost (or happened in a filtered process): the exec still finds the parent.
  feed(exec_record(11, 10, 2 * kSecond, "/bin/sh", {"sh", "-c", "backup"}));
  EXPECT_EQ(last().parent->exe, "/usr/sbin/cron");
  EXPECT_TRUE(last().lineage_complete);
}

TEST_F(ProcessTableTest, EventsFromAnUnknownProcessGetAPlaceholderNamedByComm) {
  feed(snapshot_record(1, 0, 0, "/sbin/init"));
  feed(RecordBuilder(PAL_FILE_UNLINK).task(77, 1, 5 * kSecond, "mystery").str(0, "/x").build());
  ASSERT_TRUE(last().process);
  EXPECT_EQ(last().process->comm, "mystery");
  EXPECT_TRUE(last().process->exe.empty());
  EXPECT_EQ(table.stats().placeholders, 1U);
}

TEST_F(ProcessTableTest, EventsHandedOutKeepTheirViewAcrossALaterExec) {
  feed(snapshot_record(1, 0, 0, "/sbin/init"));
  feed(exec_record(20, 1, kSecond, "/bin/bash", {"bash"}));
  Event before = last();
  feed(exec_record(20, 1, kSecond, "/usr/bin/python3", {"python3"}));
  EXPECT_EQ(before.process->exe, "/bin/bash") << "copy-on-write: history is not rewritten";
  EXPECT_EQ(last().process->exe, "/usr/bin/python3");
}

TEST(ProcessTableLimitsTest, HardCapBoundsEntries) {
  ProcessTable table(ProcessTableLimits{
      .max_entries = 100, .max_bytes = 1U << 30, .linger_ns = 1000 * kSecond, .max_lineage = 64});
  Pipeline pipeline(table, {});
  for (uint32_t pid = 2; pid < 1000; ++pid) {
    pipeline.handle(exec_record(pid, 1, pid * kSecond, "/bin/x", {"x"}, pid * kSecond));
    if (pid % 2 == 0) pipeline.handle(exit_record(pid, pid * kSecond, 0, pid * kSecond));
  }
  EXPECT_LE(table.size(), 100U);
  EXPECT_GT(table.stats().evicted_forced, 0U);
}

TEST(LossAccounting, CountsGapsPerCpuAndClass) {
  ProcessTable table;
  Pipeline pipeline(table, {});
  auto file = [](uint16_t cpu, uint64_t seq) {
    return RecordBuilder(PAL_FILE_UNLINK).task(5, 1, 0, "rm").seq(cpu, seq).str(0, "/x").build();
  };
  pipeline.handle(file(0, 1));
  pipeline.handle(file(0, 2));
  pipeline.handle(file(1, 1));
  pipeline.handle(file(0, 6));  // 3, 4, 5 lost on cpu 0
  pipeline.handle(file(1, 3));  // 2 lost on cpu 1
  auto stats = pipeline.stats();
  EXPECT_EQ(stats.classes[static_cast<size_t>(EventClass::kFile)].received, 5U);
  EXPECT_EQ(stats.classes[static_cast<size_t>(EventClass::kFile)].lost, 4U);
  EXPECT_EQ(stats.classes[static_cast<size_t>(EventClass::kProcess)].lost, 0U);
}

TEST(PathRulesTest, ExcludesAndIncludesByPrefix) {
  PathRules rules{.exclude = {"/proc/"}, .include = {}};
  Event e;
  e.kind = EventKind::kFileOpen;
  e.path = "/proc/self/status";
  EXPECT_FALSE(rules.reports(e));
  e.path = "/etc/passwd";
  EXPECT_TRUE(rules.reports(e));
  rules.include = {"/var/"};
  EXPECT_FALSE(rules.reports(e));
  e.kind = EventKind::kFileRename;
  e.path2 = "/var/x";
  EXPECT_TRUE(rules.reports(e)) << "a rename into a watched tree is reported";
}

}  // namespace
}  // namespace palisade::agent

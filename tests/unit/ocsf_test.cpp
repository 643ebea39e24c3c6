#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "palisade/agent/pipeline.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/ocsf/json_writer.h"
#include "test_records.h"

namespace palisade::agent {
namespace {

using namespace testing;
using nlohmann::json;

class OcsfTest : public ::testing::Test {
 protected:
  OcsfTest() {
    ocsf::HostInfo host;
    host.hostname = "node-1";
    host.kernel_release = "6.18.0";
    formatter = std::make_unique<ocsf::Formatter>(host);
    pipeline.handle(snapshot_record(1, 0, 0, "/sbin/init"));
    pipeline.handle(snapshot_record(10, 1, 1'000'000'000, "/usr/sbin/sshd"));
    pipeline.handle(snapshot_record(20, 10, 2'000'000'000, "/bin/bash"));
  }

  json emit(const std::vector<std::byte>& record) {
    pipeline.handle(record);
    std::string out;
    formatter->format(sink.last, out);
    return json::parse(out);  // throws on invalid JSON
  }

  struct Last : runtime::EventSink {
    void consume(const Event& e, std::string_view) override { last = e; }
    Event last;
  } sink;
  ProcessTable table;
  Pipeline pipeline{table, {&sink}};
  std::unique_ptr<ocsf::Formatter> formatter;
};

TEST_F(OcsfTest, ExecIsProcessLaunchWithLineageAndActor) {
  auto record = RecordBuilder(PAL_PROC_EXEC)
                    .task(30, 20, 3'000'000'000, "rm")
                    .uid(0, 1000)
                    .str(0, "/usr/bin/rm")
                    .str(1, argv_block({"rm", "-rf", "/data"}))
                    .str(2, "/root")
                    .build();
  json j = emit(record);
  EXPECT_EQ(j["class_uid"], 1007);
  EXPECT_EQ(j["category_uid"], 1);
  EXPECT_EQ(j["activity_id"], 1);
  EXPECT_EQ(j["type_uid"], 100701);
  EXPECT_EQ(j["metadata"]["version"], "1.3.0");
  EXPECT_EQ(j["metadata"]["product"]["vendor_name"], "palisade");
  EXPECT_EQ(j["device"]["hostname"], "node-1");
  EXPECT_EQ(j["device"]["os"]["type_id"], 200);
  EXPECT_EQ(j["process"]["pid"], 30);
  EXPECT_EQ(j["process"]["file"]["path"], "/usr/bin/rm");
  EXPECT_EQ(j["process"]["cmd_line"], "rm -rf /data");
  EXPECT_EQ(j["process"]["user"]["uid"], "0");
  EXPECT_EQ(j["process"]["auid"], 1000);
  EXPECT_EQ(j["process"]["parent_process"]["pid"], 20);
  EXPECT_EQ(j["process"]["lineage"], json({"/bin/bash", "/usr/sbin/sshd", "/sbin/init"}));
  EXPECT_EQ(j["actor"]["process"]["pid"], 20);
  EXPECT_EQ(j["actor"]["user"]["uid"], "1000") << "the login user survives sudo";
  EXPECT_EQ(j["unmapped"]["palisade"]["lineage_pids"], json({20, 10, 1}));
  EXPECT_EQ(j["unmapped"]["palisade"]["cwd"], "/root");
}

TEST_F(OcsfTest, RenameHasSourceAndResult) {
  json j = emit(RecordBuilder(PAL_FILE_RENAME)
                    .task(20, 10, 2'000'000'000, "bash")
                    .str(0, "/tmp/a")
                    .str(1, "/etc/cron.d/job")
                    .build());
  EXPECT_EQ(j["class_uid"], 1001);
  EXPECT_EQ(j["activity_id"], 5);
  EXPECT_EQ(j["file"]["path"], "/tmp/a");
  EXPECT_EQ(j["file_result"]["path"], "/etc/cron.d/job");
  EXPECT_EQ(j["file_result"]["parent_folder"], "/etc/cron.d");
  EXPECT_EQ(j["actor"]["process"]["file"]["path"], "/bin/bash");
}

TEST_F(OcsfTest, FailedCallCarriesStatusCode) {
  json j = emit(RecordBuilder(PAL_FILE_UNLINK)
                    .task(20, 10, 2'000'000'000, "bash")
                    .result(-13)
                    .str(0, "/etc/shadow")
                    .build());
  EXPECT_EQ(j["status_id"], 2);
  EXPECT_EQ(j["status_code"], "EACCES");
}

TEST_F(OcsfTest, ConnectIsNetworkOpenOutbound) {
  RecordBuilder b(PAL_NET_CONNECT);
  b.task(20, 10, 2'000'000'000, "bash").result(-115);  // EINPROGRESS: still an open
  auto& n = b.raw().a.net;
  n.family = 2;
  n.protocol = 6;
  n.remote_addr[0] = 127;
  n.remote_addr[3] = 1;
  n.remote_port = 8080;
  json j = emit(b.build());
  EXPECT_EQ(j["class_uid"], 4001);
  EXPECT_EQ(j["activity_id"], 1);
  EXPECT_EQ(j["status_id"], 1);
  EXPECT_EQ(j["dst_endpoint"]["ip"], "127.0.0.1");
  EXPECT_EQ(j["dst_endpoint"]["port"], 8080);
  EXPECT_EQ(j["connection_info"]["direction_id"], 2);
  EXPECT_EQ(j["connection_info"]["protocol_name"], "tcp");
}

TEST_F(OcsfTest, ModuleLoadIsKernelExtensionLoad) {
  RecordBuilder b(PAL_PRIV_MODULE);
  b.task(20, 10, 2'000'000'000, "insmod").str(0, "/lib/modules/x.ko");
  b.raw().a.priv.arg[3] = 1;
  json j = emit(b.build());
  EXPECT_EQ(j["class_uid"], 1002);
  EXPECT_EQ(j["activity_id"], 1);
  EXPECT_EQ(j["driver"]["file"]["path"], "/lib/modules/x.ko");
}

TEST_F(OcsfTest, PtraceOpensTheTargetProcess) {
  RecordBuilder b(PAL_PRIV_PTRACE);
  b.task(20, 10, 2'000'000'000, "gdb");
  b.raw().a.priv.arg[0] = 16;
  b.raw().a.priv.arg[1] = 10;
  json j = emit(b.build());
  EXPECT_EQ(j["class_uid"], 1007);
  EXPECT_EQ(j["activity_id"], 3);
  EXPECT_EQ(j["process"]["pid"], 10);
  EXPECT_EQ(j["process"]["file"]["path"], "/usr/sbin/sshd");
  EXPECT_EQ(j["actor"]["process"]["pid"], 20);
}

TEST_F(OcsfTest, EscapesControlCharactersInPaths) {
  json j = emit(RecordBuilder(PAL_FILE_OPEN)
                    .task(20, 10, 2'000'000'000, "bash")
                    .str(0, std::string("/tmp/evil\n\"name\x01"))
                    .build());
  EXPECT_EQ(j["file"]["path"], std::string("/tmp/evil\n\"name\x01"));
}

TEST_F(OcsfTest, ExitCodeFromWaitStatus) {
  json j = emit(exit_record(20, 2'000'000'000, 3 << 8, 5));
  EXPECT_EQ(j["activity_id"], 2);
  EXPECT_EQ(j["exit_code"], 3);
  json killed = emit(exit_record(10, 1'000'000'000, 9, 6));
  EXPECT_EQ(killed["exit_code"], 137);
}

}  // namespace
}  // namespace palisade::agent

namespace palisade::ocsf {
namespace {

// The writer copies clean text a word at a time; every length and every position of a byte that
// needs escaping must still come out exactly as nlohmann::json would read it back.
TEST(JsonWriterTest, EscapesAtEveryPositionAndLength) {
  for (size_t len = 0; len < 40; ++len) {
    for (size_t pos = 0; pos <= len; ++pos) {
      for (char special : {'"', '\\', '\n', '\x01', '\x7f'}) {
        std::string text(len, 'x');
        if (pos < len) text[pos] = special;
        std::string out;
        append_json_string(out, text);
        ASSERT_EQ(nlohmann::json::parse(out).get<std::string>(), text) << len << ' ' << pos;
      }
    }
  }
  std::string utf8 = "caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac";
  std::string out;
  append_json_string(out, utf8);
  EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(), utf8);
}

}  // namespace
}  // namespace palisade::ocsf

#include "palisade/ocsf/reader.h"
#include "palisade/policies/policy_set.h"

namespace palisade::agent {
namespace {

// Event logs written by the agent can be replayed through policies: reading an event back from
// its OCSF rendering keeps every field the rules look at.
TEST_F(OcsfTest, EventsReadBackFromOcsfMatchTheSameRules) {
  auto record = RecordBuilder(PAL_PROC_EXEC)
                    .task(30, 20, 3'000'000'000, "dropper")
                    .uid(0, 1000)
                    .str(0, "/tmp/dropper")
                    .str(1, argv_block({"/tmp/dropper", "-q"}))
                    .str(2, "/root")
                    .str(3, "/tmp/dropper")
                    .build();
  json original = emit(record);
  auto event = ocsf::event_from_ocsf(original);
  ASSERT_TRUE(event);
  EXPECT_EQ(event->kind, EventKind::kProcessExec);
  EXPECT_EQ(event->task.tgid, 30U);
  EXPECT_EQ(event->task.auid, 1000U);
  EXPECT_EQ(event->process->exe, "/tmp/dropper");
  EXPECT_EQ(event->process->cmdline, "/tmp/dropper -q");
  EXPECT_EQ(event->parent->exe, "/bin/bash");
  ASSERT_EQ(event->lineage.size(), 3U);
  EXPECT_EQ(event->lineage[1]->exe, "/usr/sbin/sshd");
  EXPECT_EQ(event->lineage[1]->pid, 10U);

  std::vector<policies::Diagnostic> errors;
  auto set = policies::PolicySet::compile(policies::default_rule_sources(), errors);
  ASSERT_TRUE(set);
  std::vector<policies::Finding> live;
  std::vector<policies::Finding> replayed;
  set->evaluate(sink.last, live);
  set->evaluate(*event, replayed);
  ASSERT_EQ(live.size(), 1U);
  ASSERT_EQ(replayed.size(), 1U);
  EXPECT_EQ(live[0].rule->name, replayed[0].rule->name);
  EXPECT_EQ(live[0].message, replayed[0].message);

  RecordBuilder c(PAL_NET_CONNECT);
  c.task(20, 10, 2'000'000'000, "bash").result(0);
  c.raw().a.net.family = 2;
  c.raw().a.net.protocol = 6;
  c.raw().a.net.remote_addr[0] = 198;
  c.raw().a.net.remote_addr[3] = 7;
  c.raw().a.net.remote_port = 3333;
  auto net = ocsf::event_from_ocsf(emit(c.build()));
  ASSERT_TRUE(net);
  EXPECT_EQ(net->remote.to_string(net->family), "198.0.0.7");
  EXPECT_EQ(net->remote.port, 3333);
  replayed.clear();
  set->evaluate(*net, replayed);
  ASSERT_EQ(replayed.size(), 1U);
  EXPECT_EQ(replayed[0].rule->name, "mining-pool-connection");

  json status = json::parse(R"({"class_uid": 0, "message": "status"})");
  EXPECT_FALSE(ocsf::event_from_ocsf(status));
}

}  // namespace
}  // namespace palisade::agent

// The monitor against libvirt's test driver (test:///default: in-process, no daemon): inventory,
// lifecycle events, metadata labels selecting policies, stats plumbing, responses through the
// API and a scale test with hundreds of domains defined through the API.
#include <gtest/gtest.h>

#include <chrono>

#include "hv_capture.h"
#include "palisade/hypervisor/libvirt.h"
#include "palisade/hypervisor/vm_responses.h"
#include "palisade/policies/policy_set.h"

namespace palisade::hypervisor {
namespace {

using testing::CaptureSink;
using testing::eventually;
using testing::json;
using testing::RunningMonitor;

constexpr const char* kUri = "test:///default";

std::string domain_xml(const std::string& name, const std::string& tier) {
  std::string xml = "<domain type='test'><name>" + name + "</name><memory>65536</memory>";
  if (!tier.empty()) {
    xml +=
        "<metadata><palisade:labels xmlns:palisade='https://palisade.dev/xmlns/libvirt/1'>"
        "<palisade:label key='tier'>" +
        tier + "</palisade:label></palisade:labels></metadata>";
  }
  xml +=
      "<os><type>hvm</type></os><devices><interface type='user'>"
      "<mac address='52:54:00:00:00:01'/></interface></devices></domain>";
  return xml;
}

// test:///default keeps its state per process: the test's connection and the monitor's see the
// same domains.
class TestDriver : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_event_loop();
    conn = Connection::open(kUri, false);
  }
  void TearDown() override {
    for (const auto& name : defined) {
      virDomainPtr d = virDomainLookupByName(conn->get(), name.c_str());
      if (d == nullptr) continue;
      if (virDomainIsActive(d) == 1) virDomainDestroy(d);
      virDomainUndefine(d);
      virDomainFree(d);
    }
  }
  DomainHandle define(const std::string& name, const std::string& tier = "") {
    virDomainPtr d = virDomainDefineXML(conn->get(), domain_xml(name, tier).c_str());
    if (d == nullptr) ADD_FAILURE() << last_libvirt_error();
    defined.push_back(name);
    return DomainHandle(d);
  }
  MonitorOptions options() const {
    MonitorOptions o;
    o.uris = {kUri};
    o.stats_interval_ms = 200;
    o.inspection.store_path =
        ::testing::TempDir() + "/hv-inspections-" + std::to_string(::getpid()) + ".db";
    return o;
  }
  static std::shared_ptr<policies::PolicySet> policy(const std::string& text) {
    std::vector<policies::Diagnostic> errors;
    auto set = policies::PolicySet::compile({policies::PolicySource{"t.yaml", text}}, errors);
    EXPECT_TRUE(set) << (errors.empty() ? "" : errors[0].to_string());
    return set;
  }

  std::shared_ptr<Connection> conn;
  std::vector<std::string> defined;
  CaptureSink sink;
};

TEST_F(TestDriver, InventoriesEveryDomainWhenItConnects) {
  define("inv-a", "web");
  RunningMonitor m(options(), nullptr, sink);
  ASSERT_TRUE(eventually([&] { return !sink.vm_events("vm_inventory", "inv-a").empty(); }));
  EXPECT_EQ(sink.vm_events("vm_host", "", "connected").size(), 1U);
  // The test driver's own running domain is there too.
  ASSERT_FALSE(sink.vm_events("vm_inventory", "test").empty());
  const json inv = sink.vm_events("vm_inventory", "inv-a")[0];
  EXPECT_EQ(inv["device"]["type"], "Virtual");
  EXPECT_EQ(inv["unmapped"]["palisade"]["vm"]["state"], "shutoff");
  EXPECT_EQ(inv["unmapped"]["palisade"]["vm"]["labels"]["tier"], "web");
  EXPECT_EQ(inv["unmapped"]["palisade"]["vm"]["nics"][0]["mac"], "52:54:00:00:00:01");
}

TEST_F(TestDriver, FollowsLifecycleEvents) {
  RunningMonitor m(options(), nullptr, sink);
  ASSERT_TRUE(eventually([&] { return !sink.vm_events("vm_host").empty(); }));
  DomainHandle d = define("life-a");
  ASSERT_EQ(virDomainCreate(d.get()), 0) << last_libvirt_error();
  ASSERT_EQ(virDomainSuspend(d.get()), 0);
  ASSERT_EQ(virDomainResume(d.get()), 0);
  ASSERT_EQ(virDomainDestroy(d.get()), 0);
  ASSERT_EQ(virDomainUndefine(d.get()), 0);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"defined", "added"},    {"started", "booted"},    {"suspended", "paused"},
      {"resumed", "unpaused"}, {"stopped", "destroyed"}, {"undefined", "removed"}};
  ASSERT_TRUE(eventually(
      [&] { return sink.vm_events("vm_lifecycle", "life-a").size() >= expected.size(); }));
  const auto events = sink.vm_events("vm_lifecycle", "life-a");
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(events[i]["unmapped"]["palisade"]["action"], expected[i].first) << i;
    EXPECT_EQ(events[i]["unmapped"]["palisade"]["detail"], expected[i].second) << i;
  }
  EXPECT_EQ(events[1]["unmapped"]["palisade"]["vm"]["state"], "running");
}

TEST_F(TestDriver, MetadataLabelsSelectRulesAndTheirResponses) {
  // Web VMs are suspended as soon as they start; others are left alone.
  auto set = policy(R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: web-vm-started}
spec:
  condition: event.kind = vm_lifecycle and vm.action = started and vm.label = "tier=web"
  output: "web VM {vm.name} started"
  severity: high
  response: suspend
)");
  RunningMonitor m(options(), set, sink);
  ASSERT_TRUE(eventually([&] { return !sink.vm_events("vm_host").empty(); }));
  DomainHandle web = define("sel-web", "web");
  DomainHandle db = define("sel-db", "db");
  ASSERT_EQ(virDomainCreate(web.get()), 0);
  ASSERT_EQ(virDomainCreate(db.get()), 0);
  ASSERT_TRUE(eventually([&] { return !sink.audits().empty(); }));
  const auto findings = sink.findings();
  ASSERT_EQ(findings.size(), 1U);
  EXPECT_EQ(findings[0]["message"], "web VM sel-web started");
  EXPECT_EQ(findings[0]["device"]["name"], "sel-web");
  const json audit = sink.audits()[0];
  EXPECT_EQ(audit["status"], "Success") << audit.dump();
  EXPECT_EQ(audit["unmapped"]["palisade"]["response"], "suspend");
  EXPECT_EQ(audit["unmapped"]["palisade"]["rule"], "web-vm-started");
  EXPECT_EQ(audit["device"]["name"], "sel-web");
  EXPECT_EQ(domain_state(web.get()), "paused");
  EXPECT_EQ(domain_state(db.get()), "running");

  // Relabelled through the API: the inventory follows, and so does selection.
  const std::string labels = "<labels><label key='tier'>web</label></labels>";
  ASSERT_EQ(virDomainSetMetadata(db.get(), VIR_DOMAIN_METADATA_ELEMENT, labels.c_str(), "palisade",
                                 "https://palisade.dev/xmlns/libvirt/1",
                                 VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG),
            0)
      << last_libvirt_error();
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : sink.vm_events("vm_inventory", "sel-db", "configured")) {
      if (e["unmapped"]["palisade"]["vm"]["labels"].value("tier", "") == "web") return true;
    }
    return false;
  }));
}

TEST_F(TestDriver, StatsSamplesBecomeRateEvents) {
  MonitorOptions o = options();
  o.emit_stats = true;
  DomainHandle d = define("stats-a");
  ASSERT_EQ(virDomainCreate(d.get()), 0);
  RunningMonitor m(o, nullptr, sink);
  ASSERT_TRUE(eventually([&] { return sink.vm_events("vm_stats", "stats-a").size() >= 2; }));
  const json s = sink.vm_events("vm_stats", "stats-a")[0];
  const json& stats = s["unmapped"]["palisade"]["stats"];
  EXPECT_GT(stats["interval_ms"].get<int>(), 0);
  // The test driver reports state only: rates it cannot know are -1, never invented.
  EXPECT_GE(stats["cpu_percent"].get<int>(), -1);
  EXPECT_EQ(m.monitor().status()["stats_errors"], 0);
}

TEST_F(TestDriver, ResponsesActThroughLibvirtAndSayWhatFailed) {
  DomainHandle d = define("resp-a");
  ASSERT_EQ(virDomainCreate(d.get()), 0);
  ResponseOptions options;
  ActionOutcome out = carry_out(*conn, d.get(), VmAction::kSuspend, options);
  EXPECT_TRUE(out.ok) << out.detail;
  EXPECT_EQ(domain_state(d.get()), "paused");
  out = carry_out(*conn, d.get(), VmAction::kResume, options);
  EXPECT_TRUE(out.ok) << out.detail;
  EXPECT_EQ(domain_state(d.get()), "running");
  // The test driver cannot change links: the outcome says so, with libvirt's reason.
  out = carry_out(*conn, d.get(), VmAction::kIsolate, options);
  EXPECT_FALSE(out.ok);
  EXPECT_FALSE(out.evidence.empty());
  options.force = true;
  out = carry_out(*conn, d.get(), VmAction::kShutdown, options);
  EXPECT_TRUE(out.ok) << out.detail;
  EXPECT_EQ(domain_state(d.get()), "shutoff");
  const VmView vm = describe_domain(d.get(), kUri, "Test");
  const json record =
      vm_remediation_record(VmAction::kShutdown, vm, out, {{"uid", 0}, {"name", "root"}});
  EXPECT_EQ(record["class_uid"], 7001);
  EXPECT_EQ(record["activity_name"], "Evict");
  EXPECT_EQ(record["device"]["uid"], vm.uuid);
}

TEST_F(TestDriver, ScalesToHundredsOfDomainsDefinedThroughTheApi) {
  constexpr int kDomains = 300;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kDomains; ++i) define("scale-" + std::to_string(i), i % 2 ? "web" : "db");
  RunningMonitor m(options(), nullptr, sink);
  ASSERT_TRUE(eventually(
      [&] {
        size_t n = 0;
        for (const auto& e : sink.vm_events("vm_inventory")) {
          n += e["device"]["name"].get<std::string>().rfind("scale-", 0) == 0;
        }
        return n == kDomains;
      },
      std::chrono::seconds(60)));
  const auto synced = std::chrono::steady_clock::now();
  for (int i = 0; i < kDomains; ++i) {
    virDomainPtr d = virDomainLookupByName(conn->get(), ("scale-" + std::to_string(i)).c_str());
    ASSERT_NE(d, nullptr);
    ASSERT_EQ(virDomainCreate(d), 0);
    virDomainFree(d);
  }
  ASSERT_TRUE(
      eventually([&] { return sink.vm_events("vm_lifecycle", "", "started").size() >= kDomains; },
                 std::chrono::seconds(60)));
  const auto done = std::chrono::steady_clock::now();
  EXPECT_EQ(m.monitor().status()["notices_dropped"], 0);
  EXPECT_EQ(m.monitor().status()["hosts"][0]["domains"].get<int>(), kDomains + 1);
  std::printf("[ scale ] %d domains inventoried in %lld ms; %d starts followed in %lld ms\n",
              kDomains,
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(synced - t0).count()),
              kDomains,
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(done - synced).count()));
}

TEST_F(TestDriver, AnUnreachableHostIsReportedOnceAndRetried) {
  MonitorOptions o = options();
  o.uris = {"qemu+unix:///system?socket=/nonexistent/libvirt-sock"};
  o.backoff_min_ms = 50;
  o.backoff_max_ms = 100;
  RunningMonitor m(o, nullptr, sink);
  ASSERT_TRUE(eventually([&] { return !sink.vm_events("vm_host", "", "unreachable").empty(); }));
  ASSERT_TRUE(eventually(
      [&] { return m.monitor().status()["hosts"][0]["failed_attempts"].get<int>() >= 3; }));
  EXPECT_EQ(sink.vm_events("vm_host", "", "unreachable").size(), 1U);
}

}  // namespace
}  // namespace palisade::hypervisor

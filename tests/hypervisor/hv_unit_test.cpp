// The hypervisor monitor's pure parts: domain XML, lifecycle names, rates, behaviour detections
// and how VM events read in OCSF. No libvirt daemon needed.
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>

#include <nlohmann/json.hpp>

#include "palisade/hypervisor/behaviour.h"
#include "palisade/hypervisor/domain_xml.h"
#include "palisade/hypervisor/lifecycle.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/ocsf/reader.h"
#include "palisade/policies/policy_set.h"

namespace palisade::hypervisor {
namespace {

constexpr const char* kDomainXml = R"(<domain type='qemu' id='3'>
  <name>web-1</name>
  <uuid>6a1a7c1e-ed00-4000-8000-000000000001</uuid>
  <metadata>
    <palisade:labels xmlns:palisade="https://palisade.dev/xmlns/libvirt/1">
      <palisade:label key="tier">web</palisade:label>
      <palisade:label key="owner">shop</palisade:label>
    </palisade:labels>
    <other:thing xmlns:other="https://example.org/x"><other:label key="tier">ignored</other:label></other:thing>
  </metadata>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='MiB'>256</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web-1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/iso/seed.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:AB:CD:01'/>
      <source network='default'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
    </interface>
    <interface type='user'>
      <mac address='52:54:00:ab:cd:02'/>
      <model type='e1000'/>
      <link state='down'/>
    </interface>
  </devices>
</domain>)";

TEST(DomainXml, ReadsInventoryAndPalisadeLabelsOnly) {
  VmView vm;
  parse_domain_xml(kDomainXml, vm);
  EXPECT_EQ(vm.name, "web-1");
  EXPECT_EQ(vm.uuid, "6a1a7c1e-ed00-4000-8000-000000000001");
  EXPECT_EQ(vm.vcpus, 2U);
  EXPECT_EQ(vm.memory_kib, 256U * 1024);
  ASSERT_EQ(vm.disks.size(), 2U);
  EXPECT_EQ(vm.disks[0].source, "/var/lib/libvirt/images/web-1.qcow2");
  EXPECT_EQ(vm.disks[0].format, "qcow2");
  EXPECT_EQ(vm.disks[0].target, "vda");
  EXPECT_TRUE(vm.disks[1].read_only);
  EXPECT_EQ(vm.disks[1].device, "cdrom");
  ASSERT_EQ(vm.nics.size(), 2U);
  EXPECT_EQ(vm.nics[0].source, "default");
  EXPECT_EQ(vm.nics[0].target, "vnet3");
  EXPECT_TRUE(vm.nics[0].link_up);
  EXPECT_EQ(vm.nics[1].type, "user");
  EXPECT_FALSE(vm.nics[1].link_up);
  using Labels = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(vm.labels, (Labels{{"owner", "shop"}, {"tier", "web"}}));
}

TEST(DomainXml, RejectsWhatIsNotADomainAndEntities) {
  VmView vm;
  EXPECT_THROW(parse_domain_xml("<network><name>x</name></network>", vm), std::runtime_error);
  EXPECT_THROW(parse_domain_xml("<domain><name>x</name", vm), std::runtime_error);
  // An external entity is never fetched or expanded.
  parse_domain_xml(
      "<!DOCTYPE domain [<!ENTITY e SYSTEM 'file:///etc/hostname'>]><domain><name>&e;</name>"
      "</domain>",
      vm);
  EXPECT_EQ(vm.name.find("localhost"), std::string::npos);
}

TEST(DomainXml, SetsTheLinkOfOneInterfaceByMac) {
  const std::string down = interface_with_link(kDomainXml, "52:54:00:ab:cd:01", false);
  EXPECT_NE(down.find("<link state=\"down\"/>"), std::string::npos);
  EXPECT_NE(down.find("52:54:00:AB:CD:01"), std::string::npos);
  EXPECT_EQ(down.find("52:54:00:ab:cd:02"), std::string::npos);
  const std::string up = interface_with_link(kDomainXml, "52:54:00:ab:cd:02", true);
  EXPECT_NE(up.find("state=\"up\""), std::string::npos);
  EXPECT_THROW(interface_with_link(kDomainXml, "52:54:00:00:00:00", true), std::runtime_error);
}

TEST(Lifecycle, NamesLibvirtEventsAndMigrations) {
  EXPECT_EQ(lifecycle_name(VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_BOOTED).action,
            "started");
  EXPECT_EQ(lifecycle_name(VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED).detail,
            "destroyed");
  EXPECT_EQ(lifecycle_name(VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_MIGRATED).action,
            "migrated");
  EXPECT_EQ(lifecycle_name(VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STARTED_MIGRATED).detail,
            "arrived");
  EXPECT_EQ(lifecycle_name(VIR_DOMAIN_EVENT_CRASHED, 0).action, "crashed");
  EXPECT_EQ(lifecycle_name(VIR_DOMAIN_EVENT_SUSPENDED, 99).detail, "unknown");
  EXPECT_EQ(lifecycle_name(VIR_DOMAIN_EVENT_UNDEFINED, 0).action, "undefined");
}

constexpr uint64_t kSecond = 1'000'000'000ULL;

StatsCounters sample(uint64_t t_s, uint64_t cpu_ns, uint64_t tx, uint64_t wr) {
  StatsCounters c;
  c.uuid = "u1";
  c.time_ns = t_s * kSecond;
  c.vcpus = 2;
  c.cpu_time_ns = cpu_ns;
  c.net_tx_bytes = tx;
  c.net_rx_bytes = 0;
  c.disk_write_bytes = wr;
  c.balloon_rss_kib = 1000;
  return c;
}

TEST(RateTracker, TurnsCountersIntoRatesAndStartsOverAfterARestart) {
  RateTracker rates;
  EXPECT_FALSE(rates.update(sample(10, 0, 0, 0), 30 * kSecond));
  // Two vCPUs both busy for 10 s = 20 s of CPU time: 100 %.
  auto r = rates.update(sample(20, 20 * kSecond, 10'000, 5'000'000), 30 * kSecond);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cpu_percent, 100);
  EXPECT_EQ(r->net_tx_bps, 1000);
  EXPECT_EQ(r->disk_write_bps, 500'000);
  EXPECT_EQ(r->interval_ms, 10'000U);
  // One vCPU's worth over 10 s: 50 %.
  r = rates.update(sample(30, 30 * kSecond, 10'000, 5'000'000), 30 * kSecond);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cpu_percent, 50);
  EXPECT_EQ(r->net_tx_bps, 0);
  // The VM restarted: its counters went back. No rate, not a negative one.
  EXPECT_FALSE(rates.update(sample(40, kSecond, 0, 0), 30 * kSecond));
  // A gap longer than allowed (the host was away) gives no rate either.
  EXPECT_FALSE(rates.update(sample(100, 2 * kSecond, 0, 0), 30 * kSecond));
}

TEST(RateTracker, IsBoundedByTheNumberOfVms) {
  RateTracker rates(2);
  for (const char* id : {"a", "b", "c"}) {
    StatsCounters c = sample(1, 0, 0, 0);
    c.uuid = id;
    rates.update(c, kSecond);
  }
  EXPECT_EQ(rates.size(), 2U);
  EXPECT_EQ(rates.evictions(), 1U);
}

std::shared_ptr<policies::PolicySet> vm_policies(const std::string& mode) {
  std::vector<policies::Diagnostic> errors;
  auto set =
      policies::PolicySet::compile({policies::PolicySource{"vm.yaml", R"(apiVersion: palisade.dev/v1
kind: VirtualMachinePolicy
metadata: {name: miners}
spec:
  mode: )" + mode + R"(
  selector: {labels: {tier: web}}
  detections:
    cpuSaturation: {percent: 90, for: 30s, response: suspend}
    egressSpike: {factor: 5, minBytesPerSecond: 1000, learning: 60s, for: 20s, response: isolate}
    diskWriteBurst: {bytesPerSecond: 1000000, for: 20s}
)"}},
                                   errors);
  EXPECT_TRUE(set) << (errors.empty() ? "" : errors[0].to_string());
  return set;
}

VmView web_vm() {
  VmView vm;
  vm.name = "web-1";
  vm.uuid = "u1";
  vm.vcpus = 2;
  vm.labels = {{"tier", "web"}};
  return vm;
}

VmActivity rates(int64_t cpu, int64_t tx, int64_t wr) {
  VmActivity a;
  a.interval_ms = 10'000;
  a.cpu_percent = cpu;
  a.net_tx_bps = tx;
  a.disk_write_bps = wr;
  return a;
}

std::vector<std::string> judge(BehaviourDetector& d, const policies::PolicySet& set,
                               const VmView& vm, uint64_t t_s, const VmActivity& a) {
  std::vector<BehaviourFinding> out;
  d.judge(vm, a, t_s * kSecond, set.vm_policies(), out);
  std::vector<std::string> names;
  names.reserve(out.size());
  for (const auto& f : out) names.push_back(f.rule->name);
  return names;
}

TEST(BehaviourDetector, CpuSaturationFiresOnceWhenSustainedAndRearms) {
  auto set = vm_policies("enforce");
  BehaviourDetector d;
  const auto vm = web_vm();
  EXPECT_TRUE(judge(d, *set, vm, 100, rates(95, 0, 0)).empty());  // 90-100 s above
  EXPECT_TRUE(judge(d, *set, vm, 110, rates(97, 0, 0)).empty());  // 20 s
  auto fired = judge(d, *set, vm, 120, rates(99, 0, 0));          // 30 s: sustained
  ASSERT_EQ(fired, std::vector<std::string>{"vm-policy/miners/cpu-saturation"});
  EXPECT_TRUE(judge(d, *set, vm, 130, rates(99, 0, 0)).empty());  // once
  EXPECT_TRUE(judge(d, *set, vm, 140, rates(10, 0, 0)).empty());  // falls back: re-arms
  EXPECT_TRUE(judge(d, *set, vm, 150, rates(95, 0, 0)).empty());
  EXPECT_TRUE(judge(d, *set, vm, 160, rates(95, 0, 0)).empty());
  EXPECT_EQ(judge(d, *set, vm, 170, rates(95, 0, 0)).size(), 1U);
  // A dip in between means it was not sustained.
  EXPECT_EQ(set->vm_policies()[0]->cpu.rule->response, policies::Response::kSuspend);
}

TEST(BehaviourDetector, OnlySelectedVmsAreJudged) {
  auto set = vm_policies("enforce");
  BehaviourDetector d;
  auto vm = web_vm();
  vm.labels = {{"tier", "db"}};
  for (uint64_t t = 100; t < 200; t += 10)
    EXPECT_TRUE(judge(d, *set, vm, t, rates(100, 0, 0)).empty());
}

TEST(BehaviourDetector, EgressFiresFarAboveTheLearnedBaselineOnly) {
  auto set = vm_policies("audit");
  BehaviourDetector d;
  const auto vm = web_vm();
  // Learning for 60 s at about 2000 B/s: nothing fires, even at a peak.
  uint64_t t = 100;
  for (int64_t tx : {2000, 1800, 2200, 2000, 5000, 2000}) {
    EXPECT_TRUE(judge(d, *set, vm, t, rates(5, tx, 0)).empty()) << t;
    t += 10;
  }
  const double baseline = *d.egress_baseline("miners", "u1");
  EXPECT_NEAR(baseline, 2500, 1);  // the mean of what it learned
  // Normal traffic after learning: nothing. Four times the baseline: below the factor of 5.
  EXPECT_TRUE(judge(d, *set, vm, t, rates(5, 2100, 0)).empty());
  t += 10;
  EXPECT_TRUE(judge(d, *set, vm, t, rates(5, static_cast<int64_t>(baseline * 4), 0)).empty());
  t += 10;
  // Exfiltration: 100x for 20 s.
  EXPECT_TRUE(judge(d, *set, vm, t, rates(5, 500'000, 0)).empty());
  t += 10;
  auto fired = judge(d, *set, vm, t, rates(5, 500'000, 0));
  EXPECT_EQ(fired, std::vector<std::string>{"vm-policy/miners/egress-spike"});
  // Audit mode: the rule alerts; the configured response is kept for the verdict.
  EXPECT_EQ(set->vm_policies()[0]->egress.rule->response, policies::Response::kAlert);
  EXPECT_EQ(set->vm_policies()[0]->egress.configured_response, policies::Response::kIsolate);
  // The spike did not teach the baseline.
  EXPECT_LT(*d.egress_baseline("miners", "u1"), 12000);
}

TEST(BehaviourDetector, DiskWriteBurstsNeedToLast) {
  auto set = vm_policies("enforce");
  BehaviourDetector d;
  const auto vm = web_vm();
  EXPECT_TRUE(judge(d, *set, vm, 100, rates(5, 0, 5'000'000)).empty());
  EXPECT_TRUE(judge(d, *set, vm, 110, rates(5, 0, 100)).empty());  // a burst that stopped
  EXPECT_TRUE(judge(d, *set, vm, 120, rates(5, 0, 5'000'000)).empty());
  EXPECT_EQ(judge(d, *set, vm, 130, rates(5, 0, 5'000'000)),
            std::vector<std::string>{"vm-policy/miners/disk-write-burst"});
}

TEST(BehaviourDetector, AGapInTheSamplesBreaksASustainedWindow) {
  auto set = vm_policies("enforce");
  BehaviourDetector d;
  const auto vm = web_vm();
  EXPECT_TRUE(judge(d, *set, vm, 100, rates(95, 0, 0)).empty());
  EXPECT_TRUE(judge(d, *set, vm, 110, rates(95, 0, 0)).empty());
  // The host was away for an hour: the next high sample starts a new window.
  EXPECT_TRUE(judge(d, *set, vm, 3700, rates(95, 0, 0)).empty());
  EXPECT_TRUE(judge(d, *set, vm, 3710, rates(95, 0, 0)).empty());
  EXPECT_EQ(judge(d, *set, vm, 3720, rates(95, 0, 0)).size(), 1U);
}

TEST(BehaviourDetector, APolicyReloadKeepsWhatItsPoliciesLearned) {
  auto set = vm_policies("audit");
  BehaviourDetector d;
  const auto vm = web_vm();
  for (uint64_t t = 100; t <= 160; t += 10) judge(d, *set, vm, t, rates(5, 2000, 0));
  ASSERT_TRUE(d.egress_baseline("miners", "u1"));
  d.keep_only({"miners", "other"});
  EXPECT_TRUE(d.egress_baseline("miners", "u1"));
  d.keep_only({"other"});
  EXPECT_FALSE(d.egress_baseline("miners", "u1"));
}

TEST(RateTracker, NoCpuPercentageWithoutTheVcpuCount) {
  RateTracker rates;
  StatsCounters a = sample(10, 0, 0, 0);
  a.vcpus = 0;
  StatsCounters b = sample(20, 10 * kSecond, 0, 0);
  b.vcpus = 0;
  rates.update(a, 30 * kSecond);
  auto r = rates.update(b, 30 * kSecond);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cpu_percent, -1);
}

TEST(DomainXml, ReadsADiskChainAndEscapesText) {
  const std::string xml = R"(<domain><name>x</name><devices><disk type='file' device='disk'>
    <source file='/ovl/x-vda.qcow2'/><backingStore type='file'><format type='qcow2'/>
    <source file='/img/x.qcow2'/><backingStore/></backingStore><target dev='vda'/></disk>
    </devices></domain>)";
  const DiskChain chain = disk_chain(xml, "vda");
  EXPECT_EQ(chain.active, "/ovl/x-vda.qcow2");
  EXPECT_EQ(chain.backing, "/img/x.qcow2");
  EXPECT_TRUE(disk_chain(xml, "vdb").active.empty());
  EXPECT_EQ(xml_escape("a'b\"<c>&"), "a&apos;b&quot;&lt;c&gt;&amp;");
}

Event lifecycle_event() {
  Event e;
  e.kind = EventKind::kVmLifecycle;
  e.seq = 7;
  e.wall_ns = 1'700'000'000'000'000'000ULL;
  auto vm = std::make_shared<VmView>();
  parse_domain_xml(kDomainXml, *vm);
  vm->host = "qemu:///system";
  vm->hypervisor = "QEMU";
  vm->state = "running";
  e.vm = vm;
  e.vm_activity.action = "started";
  e.vm_activity.detail = "booted";
  return e;
}

TEST(VmOcsf, VmEventsAreDeviceInventoryWithTheVmAsDeviceAndReadBack) {
  ocsf::HostInfo host;
  host.hostname = "hv1";
  host.run_id = "r";
  ocsf::Formatter formatter(host);
  std::string out;
  const Event e = lifecycle_event();
  formatter.format(e, out);
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["class_uid"], 5001);
  EXPECT_EQ(j["activity_name"], "Lifecycle");
  EXPECT_EQ(j["device"]["type"], "Virtual");
  EXPECT_EQ(j["device"]["uid"], "6a1a7c1e-ed00-4000-8000-000000000001");
  EXPECT_EQ(j["observer"]["hostname"], "hv1");
  EXPECT_EQ(j["unmapped"]["palisade"]["action"], "started");
  EXPECT_EQ(j["unmapped"]["palisade"]["vm"]["labels"]["tier"], "web");
  EXPECT_EQ(j["unmapped"]["palisade"]["vm"]["disks"][0]["source"],
            "/var/lib/libvirt/images/web-1.qcow2");

  const auto read = ocsf::event_from_ocsf(j);
  ASSERT_TRUE(read);
  const Event& back = *read;
  ASSERT_TRUE(back.vm);
  EXPECT_EQ(back.kind, EventKind::kVmLifecycle);
  EXPECT_EQ(back.vm->name, "web-1");
  EXPECT_EQ(back.vm->labels, e.vm->labels);
  EXPECT_EQ(back.vm_activity.detail, "booted");
  EXPECT_EQ(back.vm->nics.size(), 2U);
}

TEST(VmOcsf, FindingsOnVmEventsNameTheVm) {
  ocsf::HostInfo host;
  host.hostname = "hv1";
  ocsf::Formatter formatter(host);
  policies::DetectionRule rule;
  rule.name = "vm-crashed";
  rule.severity = policies::Severity::kMedium;
  policies::Finding finding{&rule, "VM web-1 crashed", 1, {}};
  std::string out;
  formatter.format_finding(finding.view(), lifecycle_event(), "", "d", out);
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["class_uid"], 2004);
  EXPECT_EQ(j["device"]["name"], "web-1");
  EXPECT_EQ(j["evidences"][0]["device"]["uid"], "6a1a7c1e-ed00-4000-8000-000000000001");
  EXPECT_FALSE(j.contains("actor"));
}

}  // namespace
}  // namespace palisade::hypervisor

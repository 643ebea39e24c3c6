// `palisade hv` against a real libvirtd (QEMU driver) and a real guest booted under software
// emulation, both brought up by scripts/libvirt-up.sh: lifecycle events, stats rates that move
// when the guest burns CPU, a VirtualMachinePolicy detection and its response, link-down
// isolation and its release, suspend and resume, a forensic snapshot, a host that goes away and
// comes back, and a guest-disk inspection of the running VM through an external snapshot.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libvirt/libvirt.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include "agent_harness.h"
#include "guest_console.h"
#include "palisade/hypervisor/domain_xml.h"
#include "palisade/hypervisor/libvirt.h"

namespace palisade::testing {
namespace {

namespace hv = palisade::hypervisor;

class RealLibvirt : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (libvirtd's read-write socket)";
    // A connection whose daemon died must fail its calls, not kill the test with SIGPIPE.
    signal(SIGPIPE, SIG_IGN);
    auto found = test_vm_from_env();
    ASSERT_TRUE(found) << kTestVmMissing;
    vm = *found;
    conn = hv::Connection::open(vm.uri, false);
    domain = conn->find_domain(vm.domain);
    dir = fs::path(::testing::TempDir()) /
          ("hv-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir);
    fs::create_directories(dir / "policies");
    ensure_running();
  }

  void TearDown() override {
    stop_monitor();
    if (conn) ensure_running();
  }

  // Leaves the guest running, unpaused, with its links up, whatever a test did.
  void ensure_running() {
    const std::string state = hv::domain_state(domain.get());
    if (state == "paused") virDomainResume(domain.get());
    if (state == "shutoff" || state == "crashed") {
      ASSERT_EQ(virDomainCreate(domain.get()), 0) << hv::last_libvirt_error();
      wait_for_guest_ready(vm.console_log, std::chrono::seconds(90));
    }
    for (const auto& [flags, affect] :
         {std::pair{0U, VIR_DOMAIN_AFFECT_LIVE},
          std::pair{static_cast<unsigned>(VIR_DOMAIN_XML_INACTIVE), VIR_DOMAIN_AFFECT_CONFIG}}) {
      const std::string xml = hv::domain_xml(domain.get(), flags);
      VmView view;
      hv::parse_domain_xml(xml, view);
      for (const auto& nic : view.nics) {
        if (nic.link_up) continue;
        const std::string device = hv::interface_with_link(xml, nic.mac, true);
        virDomainUpdateDeviceFlags(domain.get(), device.c_str(), affect);
      }
    }
  }

  GuestConsole console() const { return GuestConsole(find_console_pty(vm.domain), vm.console_log); }

  void start_monitor(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {kCli,
                                     "hv",
                                     "--connect",
                                     vm.uri,
                                     "--json",
                                     (dir / "events.json").string(),
                                     "--no-stdout",
                                     "--no-store",
                                     "--policy-dir",
                                     (dir / "policies").string(),
                                     "--status-file",
                                     (dir / "status.json").string(),
                                     "--inspection-store",
                                     (dir / "inspections.db").string(),
                                     "--evidence-dir",
                                     (dir / "evidence").string(),
                                     "--no-metrics"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    monitor = spawn(argv, dir / "monitor.log");
    ASSERT_GT(monitor, 0);
    ASSERT_TRUE(wait_until([&] { return !vm_events("vm_inventory").empty(); }))
        << slurp(dir / "monitor.log");
  }

  void stop_monitor() {
    if (monitor <= 0) return;
    kill(monitor, SIGTERM);
    int status = 0;
    waitpid(monitor, &status, 0);
    monitor = -1;
  }

  std::vector<json> vm_events(const std::string& kind, const std::string& action = "") const {
    std::vector<json> out;
    for (const auto& e : json_lines(dir / "events.json")) {
      if (!e.contains("unmapped") || !e["unmapped"].contains("palisade")) continue;
      const auto& u = e["unmapped"]["palisade"];
      if (u.value("event", "") != kind) continue;
      if (kind != "vm_host" && e["device"].value("name", "") != vm.domain) continue;
      if (!action.empty() && u.value("action", "") != action) continue;
      out.push_back(e);
    }
    return out;
  }

  int cli(std::vector<std::string> args, std::string& out) const {
    args.insert(args.begin(), {kCli, "hv"});
    out.clear();  // run_capture appends
    return run_capture(args, out);
  }

  TestVm vm;
  std::shared_ptr<hv::Connection> conn;
  hv::DomainHandle domain;
  fs::path dir;
  pid_t monitor = -1;
};

TEST_F(RealLibvirt, LifecycleEventsArrive) {
  start_monitor();
  const json inv = vm_events("vm_inventory")[0];
  EXPECT_EQ(inv["unmapped"]["palisade"]["vm"]["state"], "running");
  EXPECT_EQ(inv["unmapped"]["palisade"]["vm"]["labels"]["tier"], "test");
  EXPECT_EQ(inv["unmapped"]["palisade"]["vm"]["disks"][0]["source"], vm.disk);
  ASSERT_EQ(virDomainSuspend(domain.get()), 0);
  ASSERT_EQ(virDomainResume(domain.get()), 0);
  ASSERT_TRUE(wait_until([&] { return !vm_events("vm_lifecycle", "resumed").empty(); }));
  EXPECT_EQ(vm_events("vm_lifecycle", "suspended")[0]["unmapped"]["palisade"]["detail"], "paused");
  ASSERT_EQ(virDomainDestroy(domain.get()), 0);
  ASSERT_TRUE(wait_until([&] { return !vm_events("vm_lifecycle", "stopped").empty(); }));
  EXPECT_EQ(vm_events("vm_lifecycle", "stopped")[0]["unmapped"]["palisade"]["detail"], "destroyed");
  ASSERT_EQ(virDomainCreate(domain.get()), 0);
  ASSERT_TRUE(wait_until([&] { return !vm_events("vm_lifecycle", "started").empty(); }));
  EXPECT_EQ(vm_events("vm_lifecycle", "started")[0]["unmapped"]["palisade"]["detail"], "booted");
  wait_for_guest_ready(vm.console_log, std::chrono::seconds(90));
}

TEST_F(RealLibvirt, StatsRatesMoveWhenTheGuestBurnsCpuAndThePolicyResponds) {
  std::ofstream(dir / "policies" / "miners.yaml") << R"(apiVersion: palisade.dev/v1
kind: VirtualMachinePolicy
metadata: {name: miners}
spec:
  mode: enforce
  selector: {labels: {tier: test}}
  detections:
    cpuSaturation: {percent: 30, for: 4s, response: suspend}
)";
  // An idle guest measures about 1 %, a burning one 95-100 % on an idle host. The threshold is
  // low enough for a burn to cross it when other tests share the host's two cores with QEMU.
  start_monitor({"--stats-interval", "1", "--emit-stats"});
  auto cpu_of = [](const json& e) {
    return e["unmapped"]["palisade"]["stats"]["cpu_percent"].get<int>();
  };
  ASSERT_TRUE(wait_until([&] { return vm_events("vm_stats").size() >= 3; }));
  for (const auto& s : vm_events("vm_stats")) EXPECT_LT(cpu_of(s), 30) << s.dump();
  console().start_cpu_burn(std::chrono::seconds(40));
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& s : vm_events("vm_stats")) {
          if (cpu_of(s) >= 30) return true;
        }
        return false;
      },
      std::chrono::seconds(30)));
  // Sustained for 4 s: the finding, then the suspension, audited.
  ASSERT_TRUE(wait_until([&] { return hv::domain_state(domain.get()) == "paused"; },
                         std::chrono::seconds(30)));
  const auto findings =
      findings_of(findings_in(dir / "events.json"), "vm-policy/miners/cpu-saturation");
  ASSERT_EQ(findings.size(), 1U);
  EXPECT_EQ(findings[0]["device"]["name"], vm.domain);
  EXPECT_EQ(findings[0]["unmapped"]["palisade"]["verdict"], "suspend (enforce)");
  // The response worker acts, then the monitor writes the audit record.
  EXPECT_TRUE(wait_until([&] {
    for (const auto& line : json_lines(dir / "events.json")) {
      if (line.value("class_uid", 0) == 7001 &&
          line["unmapped"]["palisade"].value("response", "") == "suspend") {
        return line["status"] == "Success";
      }
    }
    return false;
  }));
  virDomainResume(domain.get());
  console().run("pkill -f 'while :' || true");
}

TEST_F(RealLibvirt, LinkDownIsolatesTheNicsAndIsReversible) {
  std::string out;
  ASSERT_TRUE(console().carrier("eth0"));
  ASSERT_EQ(
      cli({"respond", "isolate", vm.domain, "--connect", vm.uri, "--no-store", "--reason", "test"},
          out),
      0)
      << out;
  const json audit = json::parse(out.substr(0, out.find('\n')));
  EXPECT_EQ(audit["class_uid"], 7004);
  EXPECT_EQ(audit["activity_name"], "Isolate");
  EXPECT_EQ(audit["unmapped"]["palisade"]["requested_by"]["reason"], "test");
  EXPECT_FALSE(console().carrier("eth0"));
  EXPECT_FALSE(console().carrier("eth1"));
  ASSERT_EQ(cli({"list", "--connect", vm.uri, "--json"}, out), 0);
  EXPECT_NE(out.find("\"link_up\":false"), std::string::npos) << out;
  // The stored definition too: the VM powered off and started again comes up isolated.
  ASSERT_EQ(virDomainDestroy(domain.get()), 0);
  ASSERT_EQ(virDomainCreate(domain.get()), 0) << hv::last_libvirt_error();
  wait_for_guest_ready(vm.console_log, std::chrono::seconds(90));
  EXPECT_FALSE(console().carrier("eth0"));
  EXPECT_FALSE(console().carrier("eth1"));
  ASSERT_EQ(cli({"respond", "release", vm.domain, "--connect", vm.uri, "--no-store"}, out), 0)
      << out;
  EXPECT_TRUE(console().carrier("eth0"));
  EXPECT_TRUE(console().carrier("eth1"));
}

TEST_F(RealLibvirt, SuspendAndResumeFromTheCli) {
  std::string out;
  ASSERT_EQ(cli({"respond", "suspend", vm.domain, "--connect", vm.uri, "--no-store"}, out), 0)
      << out;
  EXPECT_EQ(hv::domain_state(domain.get()), "paused");
  ASSERT_EQ(cli({"respond", "resume", vm.domain, "--connect", vm.uri, "--no-store"}, out), 0)
      << out;
  EXPECT_EQ(hv::domain_state(domain.get()), "running");
  EXPECT_EQ(console().run("echo alive"), "alive\n");
}

TEST_F(RealLibvirt, ForensicSnapshotDumpsMemoryAndFreezesTheDisk) {
  std::string out;
  ASSERT_EQ(cli({"respond", "snapshot", vm.domain, "--connect", vm.uri, "--no-store",
                 "--evidence-dir", (dir / "evidence").string()},
                out),
            0)
      << out;
  const json audit = json::parse(out.substr(0, out.find('\n')));
  const json& evidence = audit["unmapped"]["palisade"]["evidence"];
  ASSERT_TRUE(evidence.contains("memory")) << audit.dump();
  const fs::path memory = evidence["memory"].get<std::string>();
  EXPECT_GT(fs::file_size(memory), 64U << 20);
  EXPECT_EQ(slurp(memory).substr(0, 4),
            "\x7f"
            "ELF");
  ASSERT_EQ(evidence["frozen_disks"][0]["image"], vm.disk);
  // The VM now writes to an overlay; the image as it was is its read-only backing file.
  VmView view;
  hv::parse_domain_xml(hv::domain_xml(domain.get()), view);
  EXPECT_NE(view.disks[0].source, vm.disk);
  const std::string overlay = view.disks[0].source;
  EXPECT_EQ(console().run("echo alive"), "alive\n");
  // Put the VM back on its image for the other tests, and forget the snapshot.
  ASSERT_EQ(virDomainBlockCommit(domain.get(), "vda", nullptr, nullptr, 0,
                                 VIR_DOMAIN_BLOCK_COMMIT_ACTIVE),
            0)
      << hv::last_libvirt_error();
  ASSERT_TRUE(wait_until([&] {
    virDomainBlockJobInfo info{};
    return virDomainGetBlockJobInfo(domain.get(), "vda", &info, 0) == 1 && info.end > 0 &&
           info.cur == info.end;
  }));
  ASSERT_EQ(virDomainBlockJobAbort(domain.get(), "vda", VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT), 0);
  ASSERT_TRUE(wait_until([&] {
    hv::parse_domain_xml(hv::domain_xml(domain.get()), view);
    return view.disks[0].source == vm.disk;
  }));
  virDomainSnapshotPtr snap =
      virDomainSnapshotLookupByName(domain.get(), evidence["name"].get<std::string>().c_str(), 0);
  ASSERT_NE(snap, nullptr);
  virDomainSnapshotDelete(snap, VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY);
  virDomainSnapshotFree(snap);
  fs::remove(overlay);
}

TEST_F(RealLibvirt, ALostHostIsReportedAndResyncedWhenItReturns) {
  start_monitor();
  const fs::path pidfile = fs::path(std::getenv("PALISADE_VM_DIR")) / "run" / "libvirtd.pid";
  const pid_t libvirtd = std::stoi(slurp(pidfile));
  // Taken down hard, as a crash would: the monitor sees the connection close.
  ASSERT_EQ(kill(libvirtd, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return !vm_events("vm_host", "lost").empty(); }))
      << slurp(dir / "monitor.log");
  // While it is down the guest goes on (QEMU outlives libvirtd); bring libvirtd back.
  // Its output goes to a file: libvirtd, started by it, must not hold a pipe of ours open.
  const pid_t up = fork();
  if (up == 0) {
    const int fd = ::open((dir / "libvirt-up.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    const std::string script = std::string(PALISADE_SOURCE_DIR) + "/scripts/libvirt-up.sh";
    execl("/bin/bash", "bash", script.c_str(), nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(up, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(dir / "libvirt-up.log");
  ASSERT_TRUE(wait_until([&] { return !vm_events("vm_host", "restored").empty(); },
                         std::chrono::seconds(90)))
      << slurp(dir / "monitor.log");
  ASSERT_TRUE(wait_until([&] { return vm_events("vm_inventory").size() >= 2; }));
  // The test's own connection died with the daemon.
  conn = hv::Connection::open(vm.uri, false);
  domain = conn->find_domain(vm.domain);
}

TEST_F(RealLibvirt, InspectsTheRunningVmThroughASnapshotAndFindsNothingNewTheSecondTime) {
  std::vector<std::string> args = {"inspect",
                                   vm.domain,
                                   "--connect",
                                   vm.uri,
                                   "--no-store",
                                   "--no-default-rules",
                                   "--inspection-store",
                                   (dir / "inspections.db").string(),
                                   "--overlay-dir",
                                   (dir / "overlays").string(),
                                   "--guestfs-backend",
                                   "direct",
                                   "--guestfs-backend-setting",
                                   "force_tcg"};
  std::string out;
  ASSERT_EQ(cli(args, out), 0) << out;
  json done = json::parse(out.substr(0, out.find('\n')));
  EXPECT_EQ(done["unmapped"]["palisade"]["event"], "vm_inspection");
  EXPECT_EQ(done["unmapped"]["palisade"]["action"], "completed");
  EXPECT_EQ(done["unmapped"]["palisade"]["detail"], "snapshot") << done.dump();
  EXPECT_NE(done["message"].get<std::string>().find("first inspection"), std::string::npos);
  // Merged back: the VM runs on its own image again, and the overlay is gone.
  VmView view;
  hv::parse_domain_xml(hv::domain_xml(domain.get()), view);
  EXPECT_EQ(view.disks[0].source, vm.disk);
  EXPECT_TRUE(fs::is_empty(dir / "overlays"));
  EXPECT_EQ(console().run("echo alive"), "alive\n");

  ASSERT_EQ(cli(args, out), 0) << out;
  done = json::parse(out.substr(0, out.find('\n')));
  EXPECT_NE(done["message"].get<std::string>().find("0 change(s)"), std::string::npos)
      << done.dump();
  EXPECT_EQ(out.find("vm_guest_change"), std::string::npos) << out;
}

TEST_F(RealLibvirt, TheMonitorInspectsSelectedVmsOnItsSchedule) {
  std::ofstream(dir / "policies" / "inspect.yaml") << R"(apiVersion: palisade.dev/v1
kind: VirtualMachinePolicy
metadata: {name: inspect-test-vms}
spec:
  selector: {labels: {tier: test}}
  inspection: {interval: 1h, method: snapshot, paths: [/etc, /usr/bin], timeLimit: 5m}
)";
  start_monitor({"--overlay-dir", (dir / "overlays").string(), "--guestfs-backend", "direct",
                 "--guestfs-backend-setting", "force_tcg"});
  ASSERT_TRUE(
      wait_until([&] { return !vm_events("vm_inspection").empty(); }, std::chrono::seconds(240)))
      << slurp(dir / "monitor.log");
  const json done = vm_events("vm_inspection")[0];
  EXPECT_EQ(done["unmapped"]["palisade"]["action"], "completed") << done.dump();
  EXPECT_EQ(done["unmapped"]["palisade"]["detail"], "snapshot");
  // Frozen for the inspection, then merged back.
  VmView view;
  hv::parse_domain_xml(hv::domain_xml(domain.get()), view);
  EXPECT_EQ(view.disks[0].source, vm.disk);
  // Due again only in an hour: one inspection, whatever the scheduler's rounds.
  std::this_thread::sleep_for(std::chrono::seconds(6));
  EXPECT_EQ(vm_events("vm_inspection").size(), 1U);
  const json status = json::parse(slurp(dir / "status.json"));
  EXPECT_EQ(status["hosts"][0]["connected"], true);
}

TEST_F(RealLibvirt, AVmLeftOnAnInspectionOverlayIsMergedBackWhenTheHostIsSynced) {
  // As if palisade hv died between an inspection's snapshot and its merge.
  const fs::path overlays = dir / "overlays";
  fs::create_directories(overlays);
  const std::string overlay = (overlays / "leftover-vda.qcow2").string();
  const std::string xml =
      "<domainsnapshot><disks><disk name='vda' snapshot='external'><driver type='qcow2'/>"
      "<source file='" +
      overlay + "'/></disk></disks></domainsnapshot>";
  virDomainSnapshotPtr snap = virDomainSnapshotCreateXML(
      domain.get(), xml.c_str(),
      VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
          VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA);
  ASSERT_NE(snap, nullptr) << hv::last_libvirt_error();
  virDomainSnapshotFree(snap);
  ASSERT_EQ(hv::disk_chain(hv::domain_xml(domain.get()), "vda").active, overlay);
  start_monitor({"--overlay-dir", overlays.string()});
  ASSERT_TRUE(wait_until([&] { return !vm_events("vm_inspection", "recovered").empty(); }))
      << slurp(dir / "monitor.log");
  EXPECT_EQ(hv::disk_chain(hv::domain_xml(domain.get()), "vda").active, vm.disk);
  EXPECT_FALSE(fs::exists(overlay));
  EXPECT_EQ(console().run("echo alive"), "alive\n");
}

}  // namespace
}  // namespace palisade::testing

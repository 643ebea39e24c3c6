// End-to-end: the real `palisade` binary with the real sensor. Output files, the store, status,
// SIGHUP reload with a bad file, SIGTERM flush, and record/replay through the same pipeline.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "agent_harness.h"

namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using namespace palisade::testing;

class CliTest : public AgentTest {};

TEST_F(CliTest, AgentWritesJsonStoreAndStatusAndFlushesOnSigterm) {
  std::ofstream(dir / "agent.yaml") << "status:\n  interval_seconds: 1\n";
  start_agent({"--config", (dir / "agent.yaml").string(), "--record", (dir / "cap.bin").string()});
  const fs::path victim = dir / "victim";
  fs::create_directories(victim);
  for (int i = 0; i < 20; ++i) std::ofstream(victim / ("f" + std::to_string(i))) << i;
  std::string ignored;
  run_capture({"/bin/rm", "-rf", victim.string()}, ignored);

  // A bad configuration on SIGHUP is rejected; the agent keeps running on the previous one.
  std::ofstream(dir / "agent.yaml") << "status:\n  interval_secondz: 1\n";
  kill(agent, SIGHUP);
  ASSERT_TRUE(wait_until([&] {
    return slurp(dir / "agent.log").find("interval_secondz: unknown key") != std::string::npos;
  })) << slurp(dir / "agent.log");
  EXPECT_EQ(kill(agent, 0), 0) << "still running after a rejected reload";

  std::string status_text;
  EXPECT_EQ(run_capture({kCli, "agent", "status", "--status-file", (dir / "status.json").string()},
                        status_text),
            0);
  EXPECT_NE(status_text.find("state:      running"), std::string::npos) << status_text;
  EXPECT_NE(status_text.find("file"), std::string::npos);
  EXPECT_NE(status_text.find("output:     store " + (dir / "events.db").string()),
            std::string::npos)
      << status_text;

  ASSERT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");

  // Every unlink reached the JSON file before exit.
  auto events = json_lines(dir / "events.jsonl");
  size_t unlinks = 0;
  bool saw_status = false;
  for (const auto& e : events) {
    if (e["class_uid"] == 0) saw_status = true;
    if (e["class_uid"] == 1001 && e["activity_id"] == 4 &&
        e["file"]["path"].get<std::string>().rfind(victim.string() + "/", 0) == 0) {
      unlinks++;
      EXPECT_EQ(e["actor"]["process"]["file"]["path"], fs::canonical("/bin/rm").string());
    }
  }
  EXPECT_EQ(unlinks, 20U);
  EXPECT_TRUE(saw_status);
  json last = events.back();
  EXPECT_EQ(last["message"], "palisade agent stopped");
  for (const auto& [cls, counters] : last["unmapped"]["palisade"]["events"].items()) {
    EXPECT_EQ(counters["lost"], 0) << cls;
  }

  // The store has the same deletions.
  std::string stored;
  ASSERT_EQ(run_capture({kCli, "events", "--db", (dir / "events.db").string(), "--exe", "*/rm",
                         "--class", "file"},
                        stored),
            0);
  EXPECT_EQ(std::count(stored.begin(), stored.end(), '\n'), 21) << "20 unlinks and one rmdir";

  // Replaying the capture through the same pipeline reproduces the deletions.
  std::string replayed;
  ASSERT_EQ(run_capture({kCli, "agent", "--replay", (dir / "cap.bin").string(), "--no-store",
                         "--status-file", (dir / "replay-status.json").string()},
                        replayed),
            0);
  std::istringstream lines(replayed);
  std::string line;
  size_t replayed_unlinks = 0;
  while (std::getline(lines, line)) {
    json e = json::parse(line);
    if (e["class_uid"] == 1001 && e["activity_id"] == 4 &&
        e["file"]["path"].get<std::string>().rfind(victim.string() + "/", 0) == 0) {
      replayed_unlinks++;
    }
  }
  EXPECT_EQ(replayed_unlinks, 20U);
}

// Once the agent says it runs (status "running"), nothing is missed: a storm started at that
// very moment is delivered from its first file (reported once with the first ~20 missing).
TEST_F(CliTest, AStormStartedTheMomentTheAgentRunsIsDeliveredFromItsFirstFile) {
  const fs::path storm = dir / "storm";
  fs::create_directories(storm);
  start_agent({"--no-store"});
  std::string ignored;
  constexpr int kFiles = 300;
  run_capture({"/bin/sh", "-c",
               "cd " + storm.string() + " && i=0; while [ $i -lt " + std::to_string(kFiles) +
                   " ]; do : > f$i; i=$((i+1)); done"},
              ignored);
  ASSERT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");
  std::set<std::string> opened;
  uint64_t lost = 0;
  for (const auto& e : json_lines(dir / "events.jsonl")) {
    if (e["class_uid"] == 1001 && e["activity_id"] == 14 &&
        e["file"]["path"].get<std::string>().rfind(storm.string() + "/f", 0) == 0) {
      opened.insert(e["file"]["path"].get<std::string>());
    }
    if (e["class_uid"] == 0 && e.value("message", "") == "palisade agent stopped") {
      for (const auto& [cls, counters] : e["unmapped"]["palisade"]["events"].items()) {
        lost += counters.value("lost", 0U);
      }
    }
  }
  EXPECT_EQ(lost, 0U);
  EXPECT_EQ(opened.size(), static_cast<size_t>(kFiles));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(opened.count((storm / ("f" + std::to_string(i))).string()), 1U) << "f" << i;
  }
}

// Start-up refuses what would only fail quietly later, and says which privilege it lacks.
TEST_F(CliTest, AgentRefusesADirectoryStatusFileAndNamesMissingPrivileges) {
  const fs::path status_dir = dir / "status-dir";
  fs::create_directories(status_dir);
  pid_t pid = spawn(
      {kCli, "agent", "--no-stdout", "--no-store", "--status-file", status_dir.string() + "/"},
      dir / "dir.log");
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(slurp(dir / "dir.log").find("is a directory"), std::string::npos)
      << slurp(dir / "dir.log");
  EXPECT_TRUE(fs::is_empty(status_dir)) << "it left a temporary file behind";

  // As an unprivileged user (setpriv, util-linux): every missing capability named at once.
  pid = spawn({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               "--inh-caps=-all", kCli, "agent", "--no-stdout", "--no-store", "--status-file",
               "/tmp/palisade-nobody-status.json"},
              dir / "nobody.log");
  waitpid(pid, &status, 0);
  const std::string log = slurp(dir / "nobody.log");
  EXPECT_EQ(WEXITSTATUS(status), 2) << log;
  EXPECT_NE(log.find("lacks:"), std::string::npos) << log;
  EXPECT_NE(log.find("CAP_BPF"), std::string::npos) << log;
  EXPECT_NE(log.find("CAP_SYS_ADMIN"), std::string::npos) << log;
  EXPECT_EQ(log.find("filesystem error"), std::string::npos) << log;
}

TEST_F(CliTest, BadConfigurationFailsWithFileLineAndField) {
  std::ofstream(dir / "bad.yaml") << "sensor:\n  argv_max_bytes: -5\n";
  std::string out;
  std::vector<std::string> argv = {kCli, "agent", "--config", (dir / "bad.yaml").string(),
                                   "--check-config"};
  pid_t pid = spawn(argv, dir / "err.log");
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(
      slurp(dir / "err.log").find((dir / "bad.yaml").string() + ":2:19: sensor.argv_max_bytes"),
      std::string::npos)
      << slurp(dir / "err.log");
}

}  // namespace

namespace {

TEST_F(CliTest, LiveAgentRaisesDetectionFindingsForRealActivity) {
  fs::create_directories(dir / "policies");
  std::ofstream(dir / "policies" / "local.yaml") << R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: local-marker}
spec:
  condition: event.kind = exec and process.name = true and exec.argc = 2
  output: "local rule saw {process.cmdline}"
  severity: low
)";
  const fs::path watched = dir / "watched";
  fs::create_directories(watched);
  std::ofstream(watched / "keep.conf") << "approved\n";
  std::ofstream(dir / "policies" / "fim.yaml") << R"(apiVersion: palisade.dev/v1
kind: WorkloadPolicy
metadata: {name: fim}
spec:
  selector: {hosts: ["*"]}
  files:
    watch: [{path: )" << watched.string() << R"(}]
    protect: [)" << (watched / "keep.conf").string()
                                               << R"(]
)";
  start_agent({"--policy-dir", (dir / "policies").string(), "--status-interval", "1"});

  // Changes below a watched directory, one of them to a protected file.
  std::string ignored;
  run_capture({"/bin/sh", "-c",
               "echo new > " + (watched / "new.conf").string() + "; echo tampered > " +
                   (watched / "keep.conf").string()},
              ignored);

  // A script run from /tmp.
  const fs::path script = dir / "dropper.sh";
  std::ofstream(script) << "#!/bin/sh\n/bin/true palisade-marker\n";
  fs::permissions(script, fs::perms::owner_all);
  run_capture({script.string()}, ignored);
  // A file written below /etc by a shell, not a package manager.
  const fs::path etc_file = "/etc/palisade-it-" + std::to_string(getpid()) + ".conf";
  run_capture({"/bin/sh", "-c", "echo tampered > " + etc_file.string()}, ignored);
  fs::remove(etc_file);
  // A mass deletion.
  const fs::path data = dir / "data";
  fs::create_directories(data);
  for (int i = 0; i < 300; ++i) std::ofstream(data / ("f" + std::to_string(i))) << i;
  run_capture({"/bin/rm", "-rf", data.string()}, ignored);

  // A broken policy on SIGHUP is rejected; the running policy stays.
  std::string digest_before;
  ASSERT_TRUE(wait_until([&] {
    try {
      digest_before = json::parse(slurp(dir / "status.json"))["policy"]["digest"];
      return !digest_before.empty();
    } catch (...) {
      return false;
    }
  }));
  std::ofstream(dir / "policies" / "broken.yaml")
      << "apiVersion: palisade.dev/v1\nkind: DetectionRule\nmetadata: {name: b}\nspec:\n"
         "  condition: process.exe = \n  output: x\n";
  kill(agent, SIGHUP);
  ASSERT_TRUE(wait_until([&] {
    return slurp(dir / "agent.log").find("policy reload rejected") != std::string::npos;
  })) << slurp(dir / "agent.log");
  EXPECT_NE(slurp(dir / "agent.log").find("broken.yaml:5:"), std::string::npos)
      << slurp(dir / "agent.log");
  ASSERT_TRUE(wait_until([&] {
    try {
      json status = json::parse(slurp(dir / "status.json"));
      return !status["policy"]["last_rejected_reload"].get<std::string>().empty();
    } catch (...) {
      return false;
    }
  }));
  json status = json::parse(slurp(dir / "status.json"));
  EXPECT_EQ(status["policy"]["digest"], digest_before) << "still on the last good policy";
  ASSERT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");

  auto findings = findings_in(dir / "events.jsonl");
  auto temp = findings_of(findings, "exec-from-writable-temp");
  ASSERT_GE(temp.size(), 1U);
  EXPECT_EQ(temp[0]["unmapped"]["palisade"]["trigger"]["unmapped"]["palisade"]["exec_filename"],
            script.string());
  EXPECT_EQ(temp[0]["severity_id"], 4);
  EXPECT_EQ(temp[0]["finding_info"]["attacks"][0]["technique"]["uid"], "T1204.002");
  EXPECT_EQ(temp[0]["finding_info"]["related_events"][0]["uid"],
            temp[0]["unmapped"]["palisade"]["trigger"]["metadata"]["uid"]);

  auto etc = findings_of(findings, "write-below-system-directories");
  bool saw_etc = false;
  for (const auto& f : etc) {
    if (f["unmapped"]["palisade"]["trigger"]["file"]["path"] == etc_file.string()) saw_etc = true;
  }
  EXPECT_TRUE(saw_etc);

  auto mass = findings_of(findings, "mass-deletion");
  ASSERT_EQ(mass.size(), 1U) << "one finding for one burst";
  EXPECT_EQ(mass[0]["actor"]["process"]["file"]["path"], fs::canonical("/bin/rm").string());
  EXPECT_FALSE(mass[0]["evidences"][0]["process"]["lineage"].empty());

  auto changed = findings_of(findings, "workload-policy/fim/files");
  ASSERT_EQ(changed.size(), 1U) << "the new file; the protected one is reported as such";
  EXPECT_EQ(changed[0]["unmapped"]["palisade"]["verdict"], "changed");
  EXPECT_EQ(changed[0]["unmapped"]["palisade"]["trigger"]["file"]["path"],
            (watched / "new.conf").string());
  auto protect = findings_of(findings, "workload-policy/fim/protect");
  ASSERT_EQ(protect.size(), 1U);
  EXPECT_EQ(protect[0]["unmapped"]["palisade"]["verdict"], "would restore (audit)");
  EXPECT_EQ(protect[0]["actor"]["process"]["file"]["path"], fs::canonical("/bin/sh").string());

  auto local = findings_of(findings, "local-marker");
  ASSERT_EQ(local.size(), 1U) << "rules from --policy-dir load too";
  EXPECT_EQ(local[0]["message"], "local rule saw /bin/true palisade-marker");

  // Findings are in the store as well.
  std::string stored;
  ASSERT_EQ(
      run_capture({kCli, "events", "--db", (dir / "events.db").string(), "--class", "finding"},
                  stored),
      0);
  EXPECT_GE(std::count(stored.begin(), stored.end(), '\n'), 4);
}

TEST_F(CliTest, PolicyLintReportsCompilerStyleErrors) {
  std::ofstream(dir / "bad.yaml") << "apiVersion: palisade.dev/v1\nkind: DetectionRule\n"
                                     "metadata: {name: x}\nspec:\n  condition: proces.exe = a\n"
                                     "  output: x\n";
  pid_t pid = spawn({kCli, "policy", "lint", (dir / "bad.yaml").string()}, dir / "lint.log");
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_NE(slurp(dir / "lint.log")
                .find("bad.yaml:5:14: error: spec.condition: unknown field or macro 'proces.exe'"),
            std::string::npos)
      << slurp(dir / "lint.log");
  std::string out;
  EXPECT_EQ(run_capture({kCli, "policy", "test"}, out), 0);
  EXPECT_NE(out.find(" passed, 0 failed"), std::string::npos) << out;
  // README's example: the shipped rules given as files are tested in place of the built-in copy,
  // not beside it (which defined every rule twice).
  out.clear();
  EXPECT_EQ(
      run_capture({kCli, "policy", "test", std::string(PALISADE_SOURCE_DIR) + "/policies/rules/"},
                  out),
      0)
      << out;
  EXPECT_NE(out.find(" passed, 0 failed"), std::string::npos) << out;
  EXPECT_EQ(out.find("duplicate"), std::string::npos) << out;
}

}  // namespace

namespace {

TEST_F(CliTest, LearnedWorkloadPolicyAllowsExactlyWhatWasSeen) {
  start_agent({"--no-default-rules"});
  const fs::path app = dir / "appsh";
  fs::copy_file("/bin/sh", app);
  std::string ignored;
  const fs::path output = dir / "appsh.out";
  run_capture({app.string(), "-c", "/bin/true; /bin/ls / >" + output.string() + "; true"}, ignored);
  // Wait until the last exec of the workload is in the store, then stop.
  ASSERT_TRUE(wait_until([&] {
    std::string out;
    run_capture({kCli, "events", "--db", (dir / "events.db").string(), "--exe", "*/ls"}, out);
    return !out.empty();
  })) << slurp(dir / "agent.log");
  ASSERT_EQ(stop_agent(), 0);

  const fs::path learned = dir / "learned.yaml";
  std::string out;
  ASSERT_EQ(run_capture({kCli, "policy", "learn", "--name", "appsh", "--hosts", "*", "--exe",
                         "*/appsh", "--db", (dir / "events.db").string(), "-o", learned.string()},
                        out),
            0);
  const std::string policy = slurp(learned);
  EXPECT_NE(policy.find("mode: audit"), std::string::npos) << policy;
  EXPECT_NE(policy.find("path: " + app.string()), std::string::npos) << policy;
  EXPECT_NE(policy.find("path: " + fs::canonical("/bin/ls").string()), std::string::npos) << policy;
  EXPECT_NE(policy.find("sha256: "), std::string::npos) << policy;
  EXPECT_NE(policy.find("writable:\n      - " + output.string()), std::string::npos) << policy;

  out.clear();
  EXPECT_EQ(run_capture({kCli, "policy", "lint", learned.string()}, out), 0) << out;
  out.clear();
  ASSERT_EQ(run_capture({kCli, "policy", "test", "--no-default-rules", learned.string(), "--events",
                         (dir / "events.jsonl").string()},
                        out),
            0);
  EXPECT_NE(out.find(": 0 findings"), std::string::npos) << "what was learned is allowed\n" << out;

  // Without ls in the allowlist, the same activity would be blocked, with the reason.
  std::string narrowed = policy;
  const std::string ls_line = "path: " + fs::canonical("/bin/ls").string();
  narrowed.replace(narrowed.find(ls_line), ls_line.size(), "path: /nonexistent");
  std::ofstream(dir / "narrowed.yaml") << narrowed;
  out.clear();
  run_capture({kCli, "policy", "test", "--no-default-rules", (dir / "narrowed.yaml").string(),
               "--events", (dir / "events.jsonl").string()},
              out);
  EXPECT_NE(out.find("FIRED workload-policy/appsh/process"), std::string::npos) << out;
  EXPECT_NE(out.find("executable " + fs::canonical("/bin/ls").string()), std::string::npos) << out;

  // Nor may the workload write where it did not write while learning.
  narrowed = policy;
  narrowed.replace(narrowed.find("- " + output.string()), output.string().size() + 2,
                   "- /nonexistent");
  std::ofstream(dir / "narrowed-files.yaml") << narrowed;
  out.clear();
  run_capture({kCli, "policy", "test", "--no-default-rules", (dir / "narrowed-files.yaml").string(),
               "--events", (dir / "events.jsonl").string()},
              out);
  EXPECT_NE(out.find("FIRED workload-policy/appsh/writable"), std::string::npos) << out;
  EXPECT_NE(out.find(output.string() + " created or opened for writing"), std::string::npos) << out;
}

}  // namespace

namespace {

// An allowlist entry that pins a sha256 holds for that content only: the live agent hashes the
// running image and flags the same path once its content changed.
TEST_F(CliTest, LiveAgentChecksPinnedExecutableHashes) {
  const fs::path tool = dir / "pinned-tool";
  fs::copy_file("/bin/true", tool);
  std::string sum;
  ASSERT_EQ(run_capture({"/usr/bin/sha256sum", tool.string()}, sum), 0);
  fs::create_directories(dir / "policies");
  std::ofstream(dir / "policies" / "pinned.yaml") << R"(apiVersion: palisade.dev/v1
kind: WorkloadPolicy
metadata: {name: pinned}
spec:
  selector: {processes: [")" << tool.string() << R"("]}
  process:
    allow:
      - {path: )" << tool.string() << ", sha256: " << sum.substr(0, 64)
                                                  << R"(}
)";
  start_agent({"--no-default-rules", "--policy-dir", (dir / "policies").string(),
               "--status-interval", "1"});
  std::string ignored;
  // The agent hashes when it processes an exec (milliseconds later, asynchronously): change the
  // file only once the first run has been looked at.
  auto hashed = [&](int n) {
    return wait_until([&] {
      try {
        return json::parse(slurp(dir / "status.json"))["policy"]["executable_hashes"]["misses"] >=
               n;
      } catch (...) {
        return false;
      }
    });
  };
  run_capture({tool.string(), "first"}, ignored);
  ASSERT_TRUE(hashed(1)) << slurp(dir / "status.json");
  std::ofstream(tool, std::ios::app) << "changed";  // still runs: trailing bytes after the ELF
  run_capture({tool.string(), "second"}, ignored);
  ASSERT_TRUE(hashed(2)) << slurp(dir / "status.json");
  ASSERT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");

  auto pinned = findings_of(findings_in(dir / "events.jsonl"), "workload-policy/pinned/process");
  ASSERT_EQ(pinned.size(), 1U) << "the first run matched its hash, the second did not";
  EXPECT_EQ(pinned[0]["unmapped"]["palisade"]["trigger"]["process"]["cmd_line"],
            tool.string() + " second");
  EXPECT_NE(pinned[0]["message"].get<std::string>().find("is allowlisted by path but its sha256"),
            std::string::npos)
      << pinned[0]["message"];
}

}  // namespace

namespace {

// Response actions are carried out and each leaves an audited Remediation Activity event.
TEST_F(CliTest, RespondKillsQuarantinesRestoresAndAuditsEachAction) {
  const std::string db = (dir / "events.db").string();
  const std::string vault = (dir / "quarantine").string();
  const fs::path file = dir / "payload.sh";
  std::ofstream(file) << "#!/bin/sh\necho pwned\n";
  fs::permissions(file, fs::perms(0755), fs::perm_options::replace);
  std::string out;
  ASSERT_EQ(run_capture({kCli, "respond", "--db", db, "--quarantine-dir", vault, "--reason", "IR-1",
                         "quarantine", file.string()},
                        out),
            0)
      << out;
  EXPECT_FALSE(fs::exists(file));
  const json isolate = json::parse(out);
  EXPECT_EQ(isolate["class_uid"], 7002);
  EXPECT_EQ(isolate["activity_name"], "Isolate");
  EXPECT_EQ(isolate["unmapped"]["palisade"]["requested_by"]["reason"], "IR-1");
  EXPECT_EQ(isolate["file"]["hashes"][0]["value"].get<std::string>().size(), 64U);
  out.clear();
  ASSERT_EQ(
      run_capture(
          {kCli, "respond", "--db", db, "--quarantine-dir", vault, "restore", file.string()}, out),
      0)
      << out;
  EXPECT_EQ(fs::status(file).permissions(), fs::perms(0755));

  pid_t tree = spawn({"/bin/sh", "-c", "sleep 60 & sleep 60 & wait"}, dir / "tree.log");
  std::this_thread::sleep_for(300ms);
  out.clear();
  ASSERT_EQ(run_capture({kCli, "respond", "--db", db, "kill", "--tree", std::to_string(tree)}, out),
            0)
      << out;
  int status = 0;
  waitpid(tree, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(json::parse(out)["unmapped"]["palisade"]["killed_pids"].size(), 3U);

  out.clear();
  ASSERT_EQ(run_capture({kCli, "events", "--db", db, "--class", "file_remediation"}, out), 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << "quarantine and restore";
  out.clear();
  ASSERT_EQ(run_capture({kCli, "events", "--db", db, "--class", "process_remediation"}, out), 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
}

}  // namespace

// The agent started on this host as the chart's DaemonSet starts it: the rendered container's
// arguments and environment, its ConfigMaps laid out as the kubelet lays them out, every volume
// mounted at its mount path (read-only where the manifest says so) in a private mount
// namespace whose root is read-only, only the capabilities the manifest adds, and no new
// privileges. It reaches the local test API server in-cluster (service-account token, CA,
// KUBERNETES_SERVICE_HOST), which serves only the CRDs the chart ships and enforces the RBAC
// the chart renders. A changed ConfigMap is reloaded as on SIGHUP; a bad one is refused.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include "../chart/chart_render.h"
#include "agent_harness.h"
#include "fake_apiserver.h"

namespace palisade::testing {
namespace {

using namespace std::chrono_literals;
namespace chart = palisade::testing::chart;
namespace k8s = palisade::k8s::testing;

const std::map<std::string, int> kCapabilities = {{"CHOWN", CAP_CHOWN},
                                                  {"DAC_OVERRIDE", CAP_DAC_OVERRIDE},
                                                  {"DAC_READ_SEARCH", CAP_DAC_READ_SEARCH},
                                                  {"FOWNER", CAP_FOWNER},
                                                  {"KILL", CAP_KILL},
                                                  {"NET_ADMIN", CAP_NET_ADMIN},
                                                  {"SYS_PTRACE", CAP_SYS_PTRACE},
                                                  {"SYS_ADMIN", CAP_SYS_ADMIN},
                                                  {"SYS_RESOURCE", CAP_SYS_RESOURCE},
                                                  {"PERFMON", CAP_PERFMON},
                                                  {"BPF", CAP_BPF}};

// A volume of the pod, as this test provides it.
struct Mount {
  std::string source;  // "" = the host's own path (hostPath volumes the test may share)
  std::string target;
  bool read_only = false;
  bool fresh_bpffs = false;  // a private bpffs instance: pins die with the test
};

// A ConfigMap volume as the kubelet writes it: the data in a timestamped directory, "..data"
// pointing at it, and each key a symlink through "..data". An update swaps "..data".
void write_config_map(const fs::path& dir, const json& data, int version) {
  fs::create_directories(dir);
  const std::string stamp = "..2026_12_04_00_00_0" + std::to_string(version);
  fs::create_directory(dir / stamp);
  for (const auto& [key, text] : data.items())
    std::ofstream(dir / stamp / key) << text.get<std::string>();
  fs::remove(dir / "..data_tmp");
  fs::create_symlink(stamp, dir / "..data_tmp");
  fs::rename(dir / "..data_tmp", dir / "..data");
  for (const auto& [key, _] : data.items()) {
    if (!fs::is_symlink(dir / key)) fs::create_symlink("..data/" + key, dir / key);
  }
}

class ChartAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("palisade-chart-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    metrics_port = free_port();
  }
  void TearDown() override {
    if (agent > 0) {
      kill(agent, SIGKILL);
      waitpid(agent, nullptr, 0);
    }
    if (!HasFailure()) fs::remove_all(dir);
  }

  std::string values() const {
    return "metrics: {port: " + std::to_string(metrics_port) + R"(}
config:
  log_level: debug
  status: {interval_seconds: 1}
policies:
  marker.yaml: |
    apiVersion: palisade.dev/v1
    kind: DetectionRule
    metadata: {name: chart-marker-one}
    spec:
      condition: event.kind = exec and process.cmdline contains "chart-marker-one"
      output: "marker one"
      severity: high
)";
  }

  // The pod's volumes: where each is mounted and what the test puts there.
  std::vector<Mount> mounts(const json& daemonset) {
    const json spec = daemonset["spec"]["template"]["spec"];
    std::map<std::string, json> volumes;
    for (const auto& v : spec["volumes"]) volumes[v["name"]] = v;
    std::vector<Mount> out;
    for (const auto& m : spec["containers"][0]["volumeMounts"]) {
      const json& v = volumes.at(m["name"]);
      Mount mount{"", m["mountPath"], m.value("readOnly", false), false};
      const std::string host = v.contains("hostPath") ? v["hostPath"]["path"] : "";
      // An emptyDir, and the host's store and logs (this test must not touch the host's): a
      // directory of the test's.
      const bool private_directory =
          v.contains("emptyDir") || host == "/var/lib/palisade" || host == "/var/log/palisade";
      if (v.contains("configMap")) {
        mount.source = (dir / v["configMap"]["name"].get<std::string>()).string();
      } else if (private_directory) {
        mount.source = (dir / m["name"].get<std::string>()).string();
        fs::create_directories(mount.source);
      } else if (host == "/sys/fs/bpf") {
        mount.fresh_bpffs = true;
      } else if (!mount.read_only || !fs::exists(host)) {
        continue;  // the host's own path, writable: nothing to do (or absent: no containerd)
      }
      out.push_back(std::move(mount));
    }
    return out;
  }

  // Forks the pod: private mounts, read-only root, the manifest's capabilities, no new
  // privileges, then the container's command. Everything is prepared before fork.
  void start_pod(const json& daemonset, const k8s::FakeApiServer& api) {
    const json container = daemonset["spec"]["template"]["spec"]["containers"][0];
    std::vector<std::string> argv = {kCli};
    for (const auto& a : container["args"]) argv.push_back(a);
    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                                    "KUBERNETES_SERVICE_HOST=127.0.0.1",
                                    "KUBERNETES_SERVICE_PORT=" + std::to_string(api.port())};
    for (const auto& e : container["env"]) {
      if (e["name"] == "NODE_NAME") env.push_back("NODE_NAME=node-a");  // fieldRef spec.nodeName
    }
    std::vector<Mount> pod_mounts = mounts(daemonset);
    const fs::path account = dir / "serviceaccount";
    fs::create_directories(account);
    std::ofstream(account / "token") << k8s::FakeApiServer::kToken;
    fs::copy_file(k8s::test_certs() / "ca.crt", account / "ca.crt",
                  fs::copy_options::overwrite_existing);
    std::ofstream(account / "namespace") << "palisade-system";
    pod_mounts.push_back(
        {account.string(), "/var/run/secrets/kubernetes.io/serviceaccount", true, false});
    for (const auto& m : pod_mounts) {
      if (!fs::exists(m.target)) fs::create_directories(m.target);  // mount points
    }
    std::vector<int> keep;
    for (const auto& c : container["securityContext"]["capabilities"]["add"]) {
      keep.push_back(kCapabilities.at(c.get<std::string>()));
    }
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<char*> envp;
    envp.reserve(env.size() + 1);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    const std::string log = (dir / "agent.log").string();

    agent = fork();
    if (agent != 0) return;
    const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(err, 1);
    dup2(err, 2);
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      _exit(120);
    for (const auto& m : pod_mounts) {
      if (m.fresh_bpffs) {
        if (mount("bpf", m.target.c_str(), "bpf", 0, "mode=0700") != 0) _exit(121);
        continue;
      }
      const char* source = m.source.empty() ? m.target.c_str() : m.source.c_str();
      if (mount(source, m.target.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(122);
      if (m.read_only &&
          mount(nullptr, m.target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0)
        _exit(123);
    }
    // readOnlyRootFilesystem: only the volumes are writable.
    if (mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) _exit(124);
    // allowPrivilegeEscalation: false, capabilities: drop ALL, add the manifest's.
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(125);
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
      if (std::find(keep.begin(), keep.end(), cap) == keep.end() &&
          prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
        _exit(126);
    }
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }

  json status() {
    try {
      return json::parse(slurp(dir / "run" / "status.json"));
    } catch (const json::exception&) {
      return json::object();
    }
  }
  std::vector<json> findings(const std::string& rule) {
    return findings_of(findings_in(dir / "logs" / "events.jsonl"), rule);
  }
  void exec_marker(const std::string& text) {
    std::string ignored;
    run_capture({"/bin/sh", "-c", "echo " + text + " >/dev/null"}, ignored);
  }

  fs::path dir;
  pid_t agent = -1;
  uint16_t metrics_port = 0;
};

TEST_F(ChartAgentTest, TheRenderedDaemonSetRunsTheAgentAndReloadsItsConfigMaps) {
  const chart::Rendered r = chart::render(values(), {"--include-crds"});
  ASSERT_EQ(r.exit_code, 0) << r.errors;
  const json daemonset = chart::manifest(r.manifests, "DaemonSet");
  const json role = chart::manifest(r.manifests, "ClusterRole");
  const json binding = chart::manifest(r.manifests, "ClusterRoleBinding");
  ASSERT_TRUE(daemonset.is_object() && role.is_object() && binding.is_object());

  // The API server knows palisade's resources only from the chart's CRDs, and lets the
  // agent's service account do what the chart's ClusterRole grants, nothing else.
  k8s::FakeApiServer api;
  api.control("require_crds");
  int crds = 0;
  for (const auto& m : r.manifests) {
    if (m["kind"] != "CustomResourceDefinition") continue;
    const json applied = api.control("apply", {{"object", m}});
    EXPECT_EQ(applied.value("ok", false), true) << applied.dump();
    crds++;
  }
  EXPECT_EQ(crds, 2);
  const json subject = binding["subjects"][0];
  const std::string user = "system:serviceaccount:" + subject["namespace"].get<std::string>() +
                           ":" + subject["name"].get<std::string>();
  EXPECT_EQ(user, "system:serviceaccount:palisade-system:palisade");
  api.control("authorize", {{"user", user}, {"rules", role["rules"]}});
  api.push("ADDED", json{{"apiVersion", "palisade.dev/v1"},
                         {"kind", "ClusterPalisadePolicy"},
                         {"metadata", {{"name", "from-the-api"}, {"generation", 1}}},
                         {"spec",
                          {{"documents",
                            {{{"kind", "DetectionRule"},
                              {"metadata", {{"name", "chart-api-rule"}}},
                              {"spec",
                               {{"condition",
                                 "event.kind = exec and process.cmdline contains "
                                 "\"chart-api-marker\""},
                                {"output", "api"},
                                {"severity", "low"}}}}}}}}});

  // The ConfigMaps' data, as the kubelet would mount it.
  const json config_map = chart::manifest(r.manifests, "ConfigMap", "palisade-config");
  const json policy_map = chart::manifest(r.manifests, "ConfigMap", "palisade-policies");
  write_config_map(dir / "palisade-config", config_map["data"], 1);
  write_config_map(dir / "palisade-policies", policy_map["data"], 1);

  start_pod(daemonset, api);
  ASSERT_TRUE(wait_until(
      [&] {
        const json s = status();
        return s.value("state", "") == "running" && s.contains("kubernetes") &&
               s["kubernetes"]["policies"].value("resources", 0) > 0;
      },
      60s))
      << slurp(dir / "agent.log") << status().dump();
  const json s = status();
  EXPECT_EQ(s["configuration"]["file"], "/etc/palisade/config/agent.yaml");
  EXPECT_EQ(s["metrics"].value("url", ""),
            "http://0.0.0.0:" + std::to_string(metrics_port) + "/metrics");

  // The resource's status is written back (a patch the chart's RBAC must allow).
  json accepted;
  EXPECT_TRUE(wait_until([&] {
    for (const auto& request : api.requests()) {
      if (request["method"] == "PATCH" &&
          request["path"] == "/apis/palisade.dev/v1/clusterpalisadepolicies/from-the-api/status")
        accepted = request["body"];
    }
    return accepted.is_object();
  })) << api.requests().dump();
  EXPECT_EQ(accepted["status"]["conditions"][0]["status"], "True") << accepted.dump();

  // Events flow, the ConfigMap's rule and the API's rule both fire.
  exec_marker("chart-marker-one");
  exec_marker("chart-api-marker");
  EXPECT_TRUE(wait_until([&] { return findings("chart-marker-one").size() == 1; }))
      << slurp(dir / "agent.log");
  EXPECT_TRUE(wait_until([&] { return findings("chart-api-rule").size() == 1; }));

  // A changed policy ConfigMap is reloaded in place.
  json updated = policy_map["data"];
  std::string text = updated["marker.yaml"];
  for (std::string::size_type at; (at = text.find("chart-marker-one")) != std::string::npos;)
    text.replace(at, 16, "chart-marker-two");
  updated["marker.yaml"] = text;
  write_config_map(dir / "palisade-policies", updated, 2);
  EXPECT_TRUE(wait_until([&] {
    exec_marker("chart-marker-two");
    return !findings("chart-marker-two").empty();
  })) << slurp(dir / "agent.log");

  // A broken one is refused and the last good set stays in force.
  write_config_map(dir / "palisade-policies",
                   json{{"marker.yaml", "kind: DetectionRule\nspec: [\n"}}, 3);
  EXPECT_TRUE(wait_until([&] {
    return !status()["policy"].value("last_rejected_reload", "").empty();
  })) << status().dump();
  const size_t before = findings("chart-marker-two").size();
  exec_marker("chart-marker-two");
  EXPECT_TRUE(wait_until([&] { return findings("chart-marker-two").size() > before; }));

  // So is a broken configuration, naming file, line and field; a good one clears the error.
  json config = config_map["data"];
  write_config_map(dir / "palisade-config",
                   json{{"agent.yaml", config["agent.yaml"].get<std::string>() + "stroe: {}\n"}},
                   2);
  std::string rejected;
  EXPECT_TRUE(wait_until([&] {
    rejected = status()["configuration"].value("last_rejected_reload", "");
    return !rejected.empty();
  })) << slurp(dir / "agent.log");
  EXPECT_NE(rejected.find("/etc/palisade/config/agent.yaml:"), std::string::npos) << rejected;
  EXPECT_NE(rejected.find("stroe: unknown key"), std::string::npos) << rejected;
  write_config_map(dir / "palisade-config", config, 3);
  EXPECT_TRUE(wait_until(
      [&] { return status()["configuration"].value("last_rejected_reload", "x").empty(); }));

  // Every call the agent made was one the chart's ClusterRole allows.
  const json rbac = api.query("/rbac");
  EXPECT_TRUE(rbac["denied"].empty()) << rbac.dump();
  EXPECT_FALSE(rbac["used"].empty());

  kill(agent, SIGTERM);
  int exit_status = 0;
  waitpid(agent, &exit_status, 0);
  agent = -1;
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0)
      << exit_status << slurp(dir / "agent.log");
}

}  // namespace
}  // namespace palisade::testing

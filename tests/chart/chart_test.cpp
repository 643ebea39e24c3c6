// The Helm chart (charts/palisade) rendered by Helm's own engine (Go text/template and Sprig, in
// charts/renderer) for its defaults and for override sets, and its manifests checked: what a
// platform team's `helm install` would create.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "../integration/agent_harness.h"
#include "chart_render.h"

namespace palisade::testing::chart {
namespace {

std::set<std::string> kinds(const std::vector<json>& manifests) {
  std::set<std::string> out;
  for (const auto& m : manifests) out.insert(m.value("kind", ""));
  return out;
}

json pod_spec(const std::vector<json>& manifests) {
  return manifest(manifests, "DaemonSet")["spec"]["template"]["spec"];
}

json volume(const std::vector<json>& manifests, const std::string& name) {
  const json spec = pod_spec(manifests);
  for (const auto& v : spec["volumes"]) {
    if (v["name"] == name) return v;
  }
  return nullptr;
}

json mount(const json& container, const std::string& name) {
  for (const auto& m : container["volumeMounts"]) {
    if (m["name"] == name) return m;
  }
  return nullptr;
}

// The agent.yaml the chart writes into its ConfigMap.
json agent_config(const std::vector<json>& manifests) {
  const json cm = manifest(manifests, "ConfigMap", "palisade-config");
  return yaml_to_json(cm["data"]["agent.yaml"].get<std::string>());
}

std::string slurp_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

TEST(Chart, DefaultsRenderTheAgentItsAccessAndItsMetricsService) {
  const Rendered r = render("");
  ASSERT_EQ(r.exit_code, 0) << r.errors;
  EXPECT_EQ(kinds(r.manifests),
            (std::set<std::string>{"ServiceAccount", "ConfigMap", "ClusterRole",
                                   "ClusterRoleBinding", "Service", "DaemonSet"}));
  // Helm's install order: what the DaemonSet needs comes first.
  EXPECT_EQ(r.manifests.front()["kind"], "ServiceAccount");
  EXPECT_EQ(r.manifests.back()["kind"], "DaemonSet");
  const json service = manifest(r.manifests, "Service");
  EXPECT_EQ(service["spec"]["clusterIP"], "None") << "each agent is scraped, not one behind a VIP";
  EXPECT_EQ(service["spec"]["ports"][0]["port"], 9477);
  for (const auto& m : r.manifests) {
    EXPECT_EQ(m["metadata"]["labels"]["app.kubernetes.io/managed-by"], "Helm") << m.dump();
  }
}

TEST(Chart, TheDaemonSetHasLeastPrivilegeByDefault) {
  const Rendered r = render("");
  ASSERT_EQ(r.exit_code, 0) << r.errors;
  const json spec = pod_spec(r.manifests);
  EXPECT_EQ(spec["hostPID"], true);
  EXPECT_EQ(spec["priorityClassName"], "system-node-critical");
  EXPECT_EQ(spec["tolerations"], json::parse(R"([{"operator": "Exists"}])"));
  EXPECT_EQ(manifest(r.manifests, "DaemonSet")["spec"]["updateStrategy"]["type"], "RollingUpdate");
  EXPECT_FALSE(spec.contains("hostNetwork"));
  const json agent = agent_container(r.manifests);
  const json& security = agent["securityContext"];
  EXPECT_EQ(security["privileged"], false);
  EXPECT_EQ(security["allowPrivilegeEscalation"], false);
  EXPECT_EQ(security["readOnlyRootFilesystem"], true);
  EXPECT_EQ(security["capabilities"]["drop"], json::parse(R"(["ALL"])"));
  EXPECT_EQ(security["capabilities"]["add"],
            json::parse(R"(["BPF", "PERFMON", "SYS_ADMIN", "SYS_PTRACE", "NET_ADMIN",
                            "SYS_RESOURCE", "DAC_READ_SEARCH", "KILL"])"));
  EXPECT_EQ(security["seccompProfile"]["type"], "RuntimeDefault");
  EXPECT_EQ(agent["resources"]["limits"]["memory"], "256Mi");
  EXPECT_EQ(agent["ports"][0]["containerPort"], 9477);
  EXPECT_EQ(agent["args"],
            json::parse(R"(["agent", "--config", "/etc/palisade/config/agent.yaml"])"));
  EXPECT_EQ(agent["env"][0]["name"], "NODE_NAME");

  // The host mounts it needs, read-only where it only reads.
  const std::map<std::string, std::pair<std::string, bool>> expected = {
      {"bpffs", {"/sys/fs/bpf", false}},
      {"tracefs", {"/sys/kernel/tracing", true}},
      {"btf", {"/sys/kernel/btf", true}},
      {"cgroup", {"/sys/fs/cgroup", false}},
      {"containerd", {"/run/containerd/containerd.sock", false}},
      {"state", {"/var/lib/palisade", false}},
      {"logs", {"/var/log/palisade", false}}};
  for (const auto& [name, where] : expected) {
    const json m = mount(agent, name);
    ASSERT_TRUE(m.is_object()) << name;
    EXPECT_EQ(m["mountPath"], where.first) << name;
    EXPECT_EQ(m.value("readOnly", false), where.second) << name;
    EXPECT_EQ(volume(r.manifests, name)["hostPath"]["path"], where.first) << name;
  }
  // Configuration and policies: ConfigMaps mounted as directories, so that the kubelet swaps
  // their files atomically on a change (a subPath mount never sees one).
  for (const auto& m : agent["volumeMounts"]) EXPECT_FALSE(m.contains("subPath")) << m.dump();
  EXPECT_EQ(volume(r.manifests, "config")["configMap"]["name"], "palisade-config");
  EXPECT_EQ(mount(agent, "config")["mountPath"], "/etc/palisade/config");
  EXPECT_EQ(volume(r.manifests, "policies")["configMap"]["name"], "palisade-policies");
  EXPECT_EQ(mount(agent, "policies")["mountPath"], "/etc/palisade/policies");
}

TEST(Chart, PrivilegedIsOnlyAnOptIn) {
  const Rendered r = render("privileged: true\n");
  ASSERT_EQ(r.exit_code, 0) << r.errors;
  const json security = agent_container(r.manifests)["securityContext"];
  EXPECT_EQ(security["privileged"], true);
  EXPECT_FALSE(security.contains("capabilities"));
}

TEST(Chart, TheAgentConfigurationComesFromValues) {
  const Rendered r = render(R"(config:
  log_level: debug
  store: {max_age_hours: 24}
  enforcement: {exec_mechanism: fanotify}
metrics:
  port: 9600
  tlsSecret: palisade-metrics-tls
  bearerToken: {secret: palisade-scrape, key: tok}
  serviceMonitor: {enabled: true, interval: 15s, labels: {release: prom}}
policies:
  lockdown.yaml: |
    apiVersion: palisade.dev/v1
    kind: DetectionRule
    metadata: {name: from-values}
    spec: {condition: "event.kind = exec and process.name = nc", output: nc, severity: high}
)");
  ASSERT_EQ(r.exit_code, 0) << r.errors;
  const json config = agent_config(r.manifests);
  EXPECT_EQ(config["log_level"], "debug");
  EXPECT_EQ(config["store"]["max_age_hours"], 24);
  EXPECT_EQ(config["enforcement"]["exec_mechanism"], "fanotify");
  EXPECT_EQ(config["output"]["stdout"], false) << "the chart's defaults stay under overrides";
  EXPECT_EQ(config["metrics"]["address"], "0.0.0.0") << "the pod's network namespace";
  EXPECT_EQ(config["metrics"]["port"], 9600);
  EXPECT_EQ(config["metrics"]["tls_certificate"], "/etc/palisade/metrics-tls/tls.crt");
  EXPECT_EQ(config["metrics"]["bearer_token_file"], "/etc/palisade/metrics-token/tok");
  EXPECT_EQ(config["policies"]["directory"], "/etc/palisade/policies");
  const json agent = agent_container(r.manifests);
  EXPECT_EQ(mount(agent, "metrics-tls")["mountPath"], "/etc/palisade/metrics-tls");
  EXPECT_EQ(volume(r.manifests, "metrics-tls")["secret"]["secretName"], "palisade-metrics-tls");
  EXPECT_EQ(volume(r.manifests, "metrics-token")["secret"]["secretName"], "palisade-scrape");
  EXPECT_EQ(agent["ports"][0]["containerPort"], 9600);
  const json monitor = manifest(r.manifests, "ServiceMonitor");
  ASSERT_TRUE(monitor.is_object());
  EXPECT_EQ(monitor["metadata"]["labels"]["release"], "prom");
  EXPECT_EQ(monitor["spec"]["endpoints"][0]["scheme"], "https");
  EXPECT_EQ(monitor["spec"]["endpoints"][0]["interval"], "15s");
  EXPECT_EQ(monitor["spec"]["endpoints"][0]["authorization"]["credentials"]["key"], "tok");
  const json policies = manifest(r.manifests, "ConfigMap", "palisade-policies");
  EXPECT_NE(policies["data"]["lockdown.yaml"].get<std::string>().find("from-values"),
            std::string::npos);

  // The agent itself accepts the configuration the chart wrote.
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("chart-agent-" + std::to_string(getpid()) + ".yaml");
  std::ofstream(file) << manifest(r.manifests, "ConfigMap", "palisade-config")["data"]["agent.yaml"]
                             .get<std::string>();
  std::string out;
  EXPECT_EQ(run_capture({kCli, "agent", "--check-config", "--config", file.string()}, out), 0)
      << out;
  std::filesystem::remove(file);
}

TEST(Chart, FileIntegrityPathsAreReadOnlyUnlessRestoreIsOn) {
  Rendered r = render("fileIntegrity: {hostPaths: [/etc, /usr/bin]}\n");
  ASSERT_EQ(r.exit_code, 0) << r.errors;
  json agent = agent_container(r.manifests);
  EXPECT_EQ(mount(agent, "fim-0")["mountPath"], "/etc");
  EXPECT_EQ(mount(agent, "fim-0")["readOnly"], true);
  EXPECT_EQ(mount(agent, "fim-1")["readOnly"], true);
  EXPECT_EQ(volume(r.manifests, "fim-1")["hostPath"]["path"], "/usr/bin");
  json added = agent["securityContext"]["capabilities"]["add"];
  EXPECT_EQ(std::count(added.begin(), added.end(), "DAC_OVERRIDE"), 0);

  r = render("fileIntegrity: {hostPaths: [/etc], restore: true}\n");
  ASSERT_EQ(r.exit_code, 0) << r.errors;
  agent = agent_container(r.manifests);
  EXPECT_EQ(mount(agent, "fim-0")["readOnly"], false);
  added = agent["securityContext"]["capabilities"]["add"];
  EXPECT_EQ(std::count(added.begin(), added.end(), "DAC_OVERRIDE"), 1);
  EXPECT_EQ(std::count(added.begin(), added.end(), "CHOWN"), 1);
}

TEST(Chart, OptionalPartsCanBeTurnedOff) {
  const Rendered r = render(R"(rbac: {create: false}
serviceAccount: {create: false, name: existing-sa}
metrics: {enabled: false}
existingPolicyConfigMap: team-policies
host: {logDirectory: ""}
priorityClassName: ""
)");
  ASSERT_EQ(r.exit_code, 0) << r.errors;
  EXPECT_EQ(kinds(r.manifests), (std::set<std::string>{"ConfigMap", "DaemonSet"}));
  const json spec = pod_spec(r.manifests);
  EXPECT_EQ(spec["serviceAccountName"], "existing-sa");
  EXPECT_FALSE(spec.contains("priorityClassName"));
  EXPECT_EQ(volume(r.manifests, "policies")["configMap"]["name"], "team-policies");
  EXPECT_TRUE(volume(r.manifests, "logs").is_null());
  EXPECT_FALSE(agent_container(r.manifests).contains("ports"));
  EXPECT_EQ(agent_config(r.manifests)["metrics"]["enabled"], false);

  const Rendered missing = render("serviceAccount: {create: false}\n");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.errors.find("serviceAccount.name is required"), std::string::npos)
      << missing.errors;
}

TEST(Chart, ValuesOutsideTheSchemaAreRefusedNamingTheField) {
  const Rendered r = render(
      "metrics: {port: 70000}\nimage: {pullPolicy: Sometimes}\nconfig: {stroe: {}}\n"
      "policies: {\"../escape\": x}\nunknown: 1\n");
  EXPECT_NE(r.exit_code, 0);
  for (const char* field : {"metrics.port", "image.pullPolicy", "config", "stroe", "policies",
                            "Additional property unknown"}) {
    EXPECT_NE(r.errors.find(field), std::string::npos) << field << " in " << r.errors;
  }
}

TEST(Chart, TheSchemaKnowsEverySectionOfTheAgentConfiguration) {
  const json schema = json::parse(slurp_file(source_dir() / "charts/palisade/values.schema.json"));
  std::set<std::string> in_schema;
  const json& sections = schema["properties"]["config"]["properties"];
  for (const auto& [key, _] : sections.items()) in_schema.insert(key);
  std::set<std::string> in_defaults;
  const json defaults = yaml_to_json(slurp_file(source_dir() / "config/palisade.yaml"));
  for (const auto& [key, _] : defaults.items()) in_defaults.insert(key);
  EXPECT_EQ(in_schema, in_defaults);
}

TEST(Chart, NotesRender) {
  const Rendered r = render("", {"--notes"});
  ASSERT_EQ(r.exit_code, 0) << r.errors;
  EXPECT_NE(r.text.find("rollout status daemonset/palisade"), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("Metrics: port 9477"), std::string::npos) << r.text;
}

// k8s/rbac.yaml and k8s/daemonset.yaml are the chart's output (scripts/render-k8s.sh), never
// edited apart from it.
TEST(Chart, K8sManifestsAreTheRenderedChart) {
  const auto without_header = [](const std::string& text) { return text.substr(text.find("---")); };
  const Rendered rbac = render(
      "", {"--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"});
  ASSERT_EQ(rbac.exit_code, 0) << rbac.errors;
  EXPECT_EQ(without_header(slurp_file(source_dir() / "k8s/rbac.yaml")), rbac.text)
      << "stale: bash scripts/render-k8s.sh";
  const Rendered agent =
      render("", {"--show-only", "templates/configmap.yaml", "--show-only",
                  "templates/service.yaml", "--show-only", "templates/daemonset.yaml"});
  ASSERT_EQ(agent.exit_code, 0) << agent.errors;
  EXPECT_EQ(without_header(slurp_file(source_dir() / "k8s/daemonset.yaml")), agent.text)
      << "stale: bash scripts/render-k8s.sh";
}

TEST(Chart, TheValuesTableInTheChartReadmeIsCurrent) {
  std::string out;
  EXPECT_EQ(run_capture({"/usr/bin/python3",
                         (source_dir() / "scripts/chart-values-table.py").string(), "--check"},
                        out),
            0)
      << out << "stale: python3 scripts/chart-values-table.py";
}

}  // namespace
}  // namespace palisade::testing::chart

// Real containers: containerd and runc with the locally built busybox image
// (scripts/containerd-up.sh). Containers get the labels the kubelet sets, so what the agent reports
// is what it would report for pods on a Kubernetes node.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>

#include "../chart/chart_render.h"
#include "agent_harness.h"
#include "fake_apiserver.h"

namespace {

using namespace palisade::testing;
using namespace std::chrono_literals;

const std::string kImage = "docker.io/library/palisade-bb:latest";

struct Pod {
  std::string name;
  std::string ns;
  std::string uid;
  std::string app;  // the pod's "app" label
};

class ContainerTest : public AgentTest {
 protected:
  void SetUp() override {
    AgentTest::SetUp();
    if (IsSkipped()) return;
    std::string out;
    ASSERT_EQ(
        run_capture({"/bin/bash", std::string(PALISADE_SOURCE_DIR) + "/scripts/containerd-up.sh"},
                    out),
        0)
        << "containerd must be installed and startable (scripts/install-deps.sh)";
  }

  std::string id(const std::string& what) {
    return "palisade-it-" + std::to_string(getpid()) + "-" + what;
  }

  // `ctr run` arguments for a container of the pod, labelled as the kubelet (through the CRI
  // plugin) labels a pod's sandbox and its containers.
  std::vector<std::string> ctr_run(const Pod& pod, const std::string& container_id,
                                   const std::string& container_name,
                                   const std::vector<std::string>& command) {
    const bool sandbox = container_name.empty();
    std::vector<std::string> argv = {"/usr/bin/ctr", "-n", "k8s.io", "run", "--rm"};
    auto label = [&](const std::string& kv) {
      argv.push_back("--label");
      argv.push_back(kv);
    };
    label("io.kubernetes.pod.name=" + pod.name);
    label("io.kubernetes.pod.namespace=" + pod.ns);
    label("io.kubernetes.pod.uid=" + pod.uid);
    label(std::string("io.cri-containerd.kind=") + (sandbox ? "sandbox" : "container"));
    if (sandbox) {
      label("app=" + pod.app);
    } else {
      label("io.kubernetes.container.name=" + container_name);
    }
    argv.push_back(kImage);
    argv.push_back(container_id);
    argv.insert(argv.end(), command.begin(), command.end());
    return argv;
  }

  // Starts the pod's sandbox (it sleeps for `seconds`) and waits until the agent knows it.
  pid_t start_sandbox(const Pod& pod, int seconds) {
    pid_t pid =
        spawn(ctr_run(pod, id(pod.name + "-pause"), "", {"/bin/sleep", std::to_string(seconds)}),
              dir / (pod.name + "-pause.log"));
    EXPECT_TRUE(wait_until([&] { return containers_known() >= known_before_ + 1; }))
        << slurp(dir / "status.json");
    known_before_ = containers_known();
    return pid;
  }

  int run_in_pod(const Pod& pod, const std::string& container_id, const std::string& script) {
    std::string out;
    return run_capture(ctr_run(pod, container_id, "app", {"/bin/sh", "-c", script}), out);
  }

  json status() {
    try {
      return json::parse(slurp(dir / "status.json"));
    } catch (...) {
      return json::object();
    }
  }
  size_t containers_known() {
    json s = status();
    return s.contains("containers") ? s["containers"]["known"].get<size_t>() : 0;
  }

  // A member of a finding or event, null when it is absent (const operator[] on a missing key
  // is undefined behaviour, not an error).
  static json field(const json& record, const std::string& pointer) {
    const json::json_pointer where(pointer);
    return record.contains(where) ? record.at(where) : json();
  }

  // Events of the shell running the container's script (`/bin/sh -c ...marker...`); the host's
  // ctr carries the same text in its command line, and must not be mistaken for it.
  std::vector<json> events_with(const std::string& kind, const std::string& marker) {
    std::vector<json> out;
    for (auto& e : json_lines(dir / "events.jsonl")) {
      const json u = e.value("unmapped", json::object()).value("palisade", json::object());
      if (!u.is_object() || u.value("event", "") != kind) continue;
      const json p = e.value("process", e.value("actor", json::object()).value("process", json()));
      const std::string cmd = p.is_object() ? p.value("cmd_line", "") : "";
      if (cmd.rfind("/bin/sh -c ", 0) == 0 && cmd.find(marker) != std::string::npos)
        out.push_back(e);
    }
    return out;
  }

  size_t known_before_ = 0;
};

TEST_F(ContainerTest, EventsCarryTheirContainerAndPodAndPoliciesSelectByNamespace) {
  fs::create_directories(dir / "policies");
  // Nothing but the pause binary may run in namespace shop; no such policy for billing.
  std::ofstream(dir / "policies" / "shop.yaml") << R"(apiVersion: palisade.dev/v1
kind: WorkloadPolicy
metadata: {name: shop-lockdown}
spec:
  selector: {namespace: shop}
  process:
    allow:
      - {path: /pause}
)";
  start_agent({"--policy-dir", (dir / "policies").string(), "--status-interval", "1"});
  ASSERT_TRUE(wait_until([&] {
    json s = status();
    return s.contains("containers") && s["containers"]["containerd"]["connected"] == true;
  })) << slurp(dir / "agent.log");
  known_before_ = containers_known();

  const Pod shop{"web-1", "shop", "uid-shop-" + std::to_string(getpid()), "web"};
  const Pod billing{"api-1", "billing", "uid-billing-" + std::to_string(getpid()), "api"};
  pid_t shop_pause = start_sandbox(shop, 8);
  pid_t billing_pause = start_sandbox(billing, 8);
  const std::string shop_app = id("shop-app");
  const std::string billing_app = id("billing-app");
  ASSERT_EQ(run_in_pod(shop, shop_app, "mkdir -p /tmp; echo shop-marker > /tmp/m; cat /tmp/m"), 0);
  ASSERT_EQ(
      run_in_pod(billing, billing_app, "mkdir -p /tmp; echo billing-marker > /tmp/m; cat /tmp/m"),
      0);
  std::string ignored;
  run_capture({"/bin/sh", "-c", "echo host-marker >/dev/null"}, ignored);
  waitpid(shop_pause, nullptr, 0);
  waitpid(billing_pause, nullptr, 0);
  ASSERT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");

  // The shell inside the shop container: container, pod, namespace and the pod's labels.
  auto shop_execs = events_with("exec", "shop-marker");
  ASSERT_FALSE(shop_execs.empty()) << slurp(dir / "agent.log");
  for (const auto& e : shop_execs) {
    EXPECT_EQ(field(e, "/container/uid"), shop_app) << e.dump();
    EXPECT_EQ(field(e, "/container/name"), "app");
    EXPECT_EQ(field(e, "/container/image/name"), kImage);
    EXPECT_EQ(field(e, "/container/pod_uuid"), shop.uid);
    EXPECT_EQ(field(e, "/unmapped/palisade/kubernetes/namespace"), "shop") << e.dump();
    EXPECT_EQ(field(e, "/unmapped/palisade/kubernetes/pod"), "web-1");
    EXPECT_EQ(field(e, "/unmapped/palisade/kubernetes/labels/app"), "web")
        << "the pod's labels, from its sandbox";
    const json profiles = field(e, "/metadata/profiles");
    EXPECT_TRUE(profiles.is_array() &&
                std::find(profiles.begin(), profiles.end(), "container") != profiles.end());
  }
  // Its file write, seen at the path inside the container.
  bool saw_write = false;
  for (auto& e : events_with("open", "shop-marker")) {
    saw_write = saw_write || (e["file"]["path"] == "/tmp/m" && e["container"]["uid"] == shop_app);
  }
  EXPECT_TRUE(saw_write);
  auto billing_execs = events_with("exec", "billing-marker");
  ASSERT_FALSE(billing_execs.empty());
  EXPECT_EQ(billing_execs[0]["container"]["uid"], billing_app);
  EXPECT_EQ(billing_execs[0]["unmapped"]["palisade"]["kubernetes"]["namespace"], "billing");

  // A host process: no container, and not unresolved either.
  auto host = events_with("exec", "host-marker");
  ASSERT_FALSE(host.empty());
  EXPECT_FALSE(host[0].contains("container"));
  EXPECT_FALSE(host[0]["unmapped"]["palisade"].contains("container_unresolved"));

  // The namespace-selected policy fired for shop's container only.
  auto violations =
      findings_of(findings_in(dir / "events.jsonl"), "workload-policy/shop-lockdown/process");
  ASSERT_FALSE(violations.empty());
  bool app_violation = false;
  for (const auto& f : violations) {
    EXPECT_EQ(field(f, "/unmapped/palisade/kubernetes/namespace"), "shop") << f.dump();
    app_violation |= field(f, "/container/uid") == shop_app;
  }
  EXPECT_TRUE(app_violation) << "the shell in shop's app container is not allowlisted";
  // The default rule for a shell in a container names the container too.
  auto shells = findings_of(findings_in(dir / "events.jsonl"), "shell-in-container");
  bool shell_in_billing = false;
  for (const auto& f : shells) shell_in_billing |= field(f, "/container/uid") == billing_app;
  EXPECT_TRUE(shell_in_billing);
}

TEST_F(ContainerTest, AnAbsentContainerdIsReportedAndEventsKeepFlowing) {
  std::ofstream(dir / "agent.yaml")
      << "containers:\n  containerd:\n    socket: " << (dir / "no-such.sock").string() << "\n";
  start_agent(
      {"--config", (dir / "agent.yaml").string(), "--no-default-rules", "--status-interval", "1"});
  ASSERT_TRUE(wait_until([&] {
    json s = status();
    return s.contains("containers") && s["containers"]["containerd"]["connected"] == false &&
           !s["containers"]["containerd"]["last_error"].get<std::string>().empty();
  })) << slurp(dir / "status.json");
  std::string ignored;
  run_capture({"/bin/sh", "-c", "echo still-watching >/dev/null"}, ignored);
  ASSERT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");
  EXPECT_FALSE(events_with("exec", "still-watching").empty());
  EXPECT_NE(slurp(dir / "agent.log").find("unavailable"), std::string::npos)
      << "said once in the log";
}

TEST_F(ContainerTest, ContainerdRestartIsSurvived) {
  start_agent({"--no-default-rules", "--status-interval", "1"});
  auto containerd = [&](const std::string& key) {
    json s = status();
    return s.contains("containers") ? s["containers"]["containerd"][key] : json();
  };
  ASSERT_TRUE(wait_until([&] { return containerd("connected") == true; }));

  std::string out;
  run_capture({"/usr/bin/pkill", "-x", "containerd"}, out);
  ASSERT_TRUE(wait_until([&] { return containerd("connected") == false; }))
      << slurp(dir / "status.json");
  ASSERT_EQ(run_capture(
                {"/bin/bash", std::string(PALISADE_SOURCE_DIR) + "/scripts/containerd-up.sh"}, out),
            0);
  ASSERT_TRUE(wait_until([&] { return containerd("connected") == true; }, 60s))
      << slurp(dir / "status.json") << slurp(dir / "agent.log");
  EXPECT_GE(containerd("reconnects").get<int>(), 1);

  const Pod pod{"after-restart", "shop", "uid-restart-" + std::to_string(getpid()), "web"};
  const std::string app = id("restart-app");
  ASSERT_EQ(run_in_pod(pod, app, "echo restart-marker"), 0);
  ASSERT_EQ(stop_agent(), 0);
  auto execs = events_with("exec", "restart-marker");
  ASSERT_FALSE(execs.empty());
  EXPECT_EQ(execs[0]["container"]["uid"], app) << execs[0].dump() << slurp(dir / "status.json");
  EXPECT_EQ(execs[0]["unmapped"]["palisade"]["kubernetes"]["pod"], "after-restart");
}

// Container drift: a container locked down in enforce mode, allowed /bin/*, copies busybox to a
// new file under /bin. That file lies in the overlayfs upper layer, so the fanotify decider (the
// default mechanism here) refuses it although its path is allowlisted, while the image's own
// busybox runs; with `drift: alert` it runs and is reported. The copy is named after an applet
// (busybox runs the applet its argv[0] names: a copy called "dropped" would only say "applet not
// found"), so that the alert case shows the copy really runs when allowed.
class ContainerDriftTest : public ContainerTest {
 protected:
  void TearDown() override {
    for (const auto& c : running_) {
      std::string out;
      run_capture({"/usr/bin/ctr", "-n", "k8s.io", "task", "kill", "-s", "SIGKILL", c.first}, out);
      waitpid(c.second, nullptr, 0);
    }
    if (agent > 0) stop_agent();
    if (!pins_.empty()) {
      std::string out;
      run_capture({kCli, "agent", "--uninstall", "--pin-directory", pins_}, out);
    }
    ContainerTest::TearDown();
  }

  // A long-running container of the pod, named as the kubelet names it; returns its id once the
  // agent has bound it to `policy`.
  std::string start_bound(const Pod& pod, const std::string& name, const std::string& policy) {
    std::string container_id = id(pod.ns + "-" + name);
    running_.emplace_back(
        container_id,
        spawn(ctr_run(pod, container_id, name, {"/bin/sleep", "120"}), dir / (name + ".log")));
    EXPECT_TRUE(wait_until(
        [&] {
          json s = status();
          if (!s.contains("enforcement")) return false;
          for (const auto& w : s["enforcement"].value("workloads", json::array())) {
            if (w.value("policy", "") == policy) return true;
          }
          return false;
        },
        60s))
        << slurp(dir / "status.json") << slurp(dir / "agent.log");
    // The cgroup (and so the binding) exists from runc's create; an exec before the task has
    // started ran nothing and printed nothing (seen under the load of the parallel suites).
    EXPECT_TRUE(wait_until(
        [&] {
          std::string tasks;
          run_capture({"/usr/bin/ctr", "-n", "k8s.io", "task", "ls"}, tasks);
          std::istringstream lines(tasks);
          std::string line;
          while (std::getline(lines, line)) {
            if (line.rfind(container_id, 0) == 0 && line.find("RUNNING") != std::string::npos) {
              return true;
            }
          }
          return false;
        },
        60s))
        << container_id << " never reached RUNNING";
    return container_id;
  }

  // Runs the script in the running container, as `kubectl exec` would; stdout and stderr in out.
  int exec_in(const std::string& container_id, const std::string& script, std::string& out) {
    return run_capture({"/usr/bin/ctr", "-n", "k8s.io", "task", "exec", "--exec-id",
                        "drift-" + std::to_string(++execs_), container_id, "/bin/sh", "-c",
                        "exec 2>&1; " + script},
                       out);
  }

  std::vector<json> drift_events(const std::string& container_id) {
    std::vector<json> out;
    for (auto& e : json_lines(dir / "events.jsonl")) {
      const json u = e.value("unmapped", json::object()).value("palisade", json::object());
      if (u.value("event", "") != "exec_deny" ||
          u.value("enforcement", json::object()).value("reason", "") != "drift") {
        continue;
      }
      if (e.value("container", json::object()).value("uid", "") == container_id) out.push_back(e);
    }
    return out;
  }

  std::string pins_;
  std::vector<std::pair<std::string, pid_t>> running_;
  int execs_ = 0;
};

TEST_F(ContainerDriftTest, ExecutableWrittenAfterStartIsRefusedEvenWhenAllowlisted) {
  pins_ = "/sys/fs/bpf/palisade-test-" + std::to_string(getpid());
  fs::create_directories(dir / "policies");
  for (const char* mode : {"block", "alert"}) {
    std::ofstream(dir / "policies" / (std::string("drift-") + mode + ".yaml"))
        << "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: drift-" << mode
        << "}\nspec:\n  selector: {namespace: drift-" << mode << ", container: app}\n"
        << "  mode: enforce\n  process:\n    drift: " << mode
        << "\n    allow:\n      - {path: \"/bin/*\"}\n";
  }
  start_agent({"--policy-dir", (dir / "policies").string(), "--pin-directory", pins_,
               "--status-interval", "1", "--no-default-rules"});
  ASSERT_TRUE(wait_until([&] {
    json s = status();
    return s.contains("containers") && s["containers"]["containerd"]["connected"] == true &&
           s.contains("enforcement");
  })) << slurp(dir / "agent.log");
  const std::string mechanism = status()["enforcement"].value("exec_mechanism", "");
  if (mechanism != "fanotify") {
    GTEST_SKIP() << "the default exec mechanism here is " << mechanism
                 << "; the drift check is made by the fanotify mechanism";
  }

  const Pod blocked{"web-0", "drift-block", "uid-drift-block-" + std::to_string(getpid()), "web"};
  const std::string blocked_id = start_bound(blocked, "app", "drift-block");
  std::string out;
  EXPECT_EQ(exec_in(blocked_id,
                    "cp /bin/busybox /bin/printf; /bin/printf 'drifted ran\\n'; "
                    "echo drift-rc=$?; /bin/echo image-ran; echo image-rc=$?",
                    out),
            0)
      << out;
  EXPECT_NE(out.find("drift-rc=126"), std::string::npos) << out;
  EXPECT_EQ(out.find("drifted ran"), std::string::npos) << out;
  EXPECT_TRUE(out.find("Operation not permitted") != std::string::npos ||
              out.find("Permission denied") != std::string::npos)
      << out;
  EXPECT_NE(out.find("image-ran\nimage-rc=0"), std::string::npos) << out;

  const Pod alerted{"web-0", "drift-alert", "uid-drift-alert-" + std::to_string(getpid()), "web"};
  const std::string alerted_id = start_bound(alerted, "app", "drift-alert");
  out.clear();
  EXPECT_EQ(exec_in(alerted_id,
                    "cp /bin/busybox /bin/printf; /bin/printf 'drifted ran\\n'; "
                    "echo drift-rc=$?",
                    out),
            0)
      << out;
  EXPECT_NE(out.find("drifted ran\ndrift-rc=0"), std::string::npos) << out;

  // Both reported with reason drift and the container's identity; the denial as denied, the
  // alert as audit.
  ASSERT_TRUE(wait_until([&] {
    return !drift_events(blocked_id).empty() && !drift_events(alerted_id).empty();
  })) << slurp(dir / "events.jsonl").substr(0, 8000)
      << slurp(dir / "agent.log");
  const std::string detail =
      "drift: /bin/printf was written after the container started (overlayfs upper layer)";
  const json denial = drift_events(blocked_id).at(0);
  const json& enforcement = denial["unmapped"]["palisade"]["enforcement"];
  EXPECT_EQ(enforcement["verdict"], "denied") << denial.dump();
  EXPECT_EQ(enforcement["hook"], "exec-fanotify");
  EXPECT_EQ(enforcement["policy"], "drift-block");
  EXPECT_NE(enforcement.value("workload", "").find("pod drift-block/web-0"), std::string::npos);
  EXPECT_EQ(denial["action"], "Denied");
  EXPECT_EQ(denial["status_detail"], "blocked by WorkloadPolicy drift-block: " + detail);
  EXPECT_EQ(denial["container"]["name"], "app");
  EXPECT_EQ(denial["container"]["image"]["name"], kImage);
  EXPECT_EQ(denial["unmapped"]["palisade"]["kubernetes"]["namespace"], "drift-block");
  const json alert = drift_events(alerted_id).at(0);
  EXPECT_EQ(alert["unmapped"]["palisade"]["enforcement"]["verdict"], "audit") << alert.dump();
  EXPECT_EQ(alert["action"], "Allowed");
  EXPECT_EQ(alert["status_detail"],
            "allowed and reported by WorkloadPolicy drift-alert: " + detail);

  // Only the drifted file: the image's busybox (run for /bin/echo, cp and sh) never was.
  for (const auto& e : drift_events(blocked_id)) {
    EXPECT_EQ(e["process"]["file"]["path"], "/bin/printf") << e.dump();
  }
  auto drift_counters = [&] { return status()["enforcement"]["exec_guard"]["drift"]; };
  EXPECT_TRUE(wait_until([&] { return drift_counters().value("drift", 0) >= 2; }, 10s))
      << drift_counters().dump();
  EXPECT_GE(drift_counters().value("image", 0), 1) << drift_counters().dump();
  EXPECT_EQ(drift_counters().value("unknown", -1), 0) << drift_counters().dump();
}

// With the Kubernetes API (a local server speaking the API's wire format): events gain the pod's
// service account and owning Deployment, PalisadePolicy resources load (confined to their
// namespace) with their status written back, and alerts become Events on the pod. The API
// server enforces the ClusterRole the chart renders (k8s/rbac.yaml): every call the agent makes
// must be allowed, and every rule must be used by some call (the role is exactly the code's).
TEST_F(ContainerTest, KubernetesIdentityPoliciesAndEvents) {
  palisade::k8s::testing::FakeApiServer api;
  json role;
  for (const json& m : palisade::testing::chart::yaml_documents(
           slurp(fs::path(PALISADE_SOURCE_DIR) / "k8s/rbac.yaml"))) {
    if (m["kind"] == "ClusterRole") role = m;
  }
  ASSERT_TRUE(role.is_object());
  api.control("authorize", {{"user", "system:serviceaccount:palisade-system:palisade"},
                            {"rules", role["rules"]}});
  // Pod 0 of the fixtures: shop/web-7d4b9c6f5-x2kqp on node-a, service account "web", owned by
  // ReplicaSet web-7d4b9c6f5 of Deployment web.
  const json pod = palisade::k8s::testing::fixture_item("pods.json", 0);
  const Pod web{pod["metadata"]["name"], "shop", pod["metadata"]["uid"], "web"};
  api.push("ADDED",
           json{{"apiVersion", "palisade.dev/v1"},
                {"kind", "PalisadePolicy"},
                {"metadata", {{"name", "marker"}, {"namespace", "shop"}, {"generation", 1}}},
                {"spec",
                 {{"documents",
                   {{{"kind", "DetectionRule"},
                     {"metadata", {{"name", "k8s-marker"}}},
                     {"spec",
                      {{"condition",
                        "event.kind = exec and process.cmdline contains "
                        "\"k8s-marker\""},
                       {"output", "marker in {k8s.namespace}/{k8s.pod.name}"},
                       {"severity", "high"}}}}}}}}});
  api.push("ADDED",
           json{{"apiVersion", "palisade.dev/v1"},
                {"kind", "PalisadePolicy"},
                {"metadata", {{"name", "broken"}, {"namespace", "shop"}, {"generation", 1}}},
                {"spec",
                 {{"documents",
                   {{{"kind", "DetectionRule"},
                     {"metadata", {{"name", "broken-rule"}}},
                     {"spec", {{"condition", "proces.exe = /bin/sh"}, {"output", "x"}}}}}}}}});
  const fs::path kubeconfig = dir / "kubeconfig";
  std::ofstream(kubeconfig) << api.kubeconfig();

  start_agent({"--no-default-rules", "--status-interval", "1", "--kubeconfig", kubeconfig.string(),
               "--node-name", "node-a"});
  ASSERT_TRUE(wait_until([&] {
    json s = status();
    return s.contains("kubernetes") && s["kubernetes"]["pods"]["cached"] == 5 &&
           s["kubernetes"]["policies"]["resources"] == 4 &&
           s["containers"]["containerd"]["connected"] == true;
  })) << slurp(dir / "status.json")
      << slurp(dir / "agent.log");
  known_before_ = containers_known();

  pid_t pause = start_sandbox(web, 6);
  ASSERT_EQ(run_in_pod(web, id("web-app"), "echo k8s-marker"), 0);
  std::string ignored;
  run_capture({"/bin/sh", "-c", "echo k8s-marker on the host"}, ignored);
  waitpid(pause, nullptr, 0);
  EXPECT_TRUE(wait_until(
      [&] {
        for (const auto& r : api.requests()) {
          if (r["method"] == "POST" && r["path"] == "/api/v1/namespaces/shop/events") return true;
        }
        return false;
      },
      10s))
      << slurp(dir / "status.json");
  ASSERT_EQ(stop_agent(), 0) << slurp(dir / "agent.log");

  auto execs = events_with("exec", "k8s-marker");
  ASSERT_FALSE(execs.empty());
  json k8s = execs[0]["unmapped"]["palisade"].value("kubernetes", json::object());
  EXPECT_EQ(k8s["pod"], web.name) << execs[0].dump();
  EXPECT_EQ(k8s["service_account"], "web");
  EXPECT_EQ(k8s["workload"]["kind"], "Deployment");
  EXPECT_EQ(k8s["workload"]["name"], "web");
  EXPECT_EQ(k8s["labels"]["app"], pod["metadata"]["labels"]["app"]) << "labels from the API";

  // The namespaced rule fired for the pod, not for the host's shell with the same text.
  auto marker = findings_of(findings_in(dir / "events.jsonl"), "k8s-marker");
  ASSERT_EQ(marker.size(), 1U) << "confined to namespace shop";
  EXPECT_EQ(marker[0]["message"], "marker in shop/" + web.name);

  // Status written back: the good resource accepted, the broken one refused with its error.
  json good, bad;
  bool event_posted = false;
  for (const auto& r : api.requests()) {
    const std::string path = r["path"];
    if (r["method"] == "PATCH" && path.find("/palisadepolicies/marker/status") != std::string::npos)
      good = r["body"];
    if (r["method"] == "PATCH" && path.find("/palisadepolicies/broken/status") != std::string::npos)
      bad = r["body"];
    if (r["method"] == "POST" && path == "/api/v1/namespaces/shop/events") {
      event_posted = true;
      EXPECT_EQ(r["body"]["involvedObject"]["uid"], web.uid);
      EXPECT_NE(r["body"]["message"].get<std::string>().find("k8s-marker"), std::string::npos);
    }
  }
  EXPECT_TRUE(event_posted);
  ASSERT_TRUE(good.is_object()) << api.requests().dump();
  EXPECT_EQ(good["status"]["conditions"][0]["status"], "True") << good.dump();
  ASSERT_TRUE(bad.is_object());
  EXPECT_EQ(bad["status"]["conditions"][0]["status"], "False") << bad.dump();
  EXPECT_NE(bad.dump().find("unknown field or macro 'proces.exe'"), std::string::npos)
      << bad.dump();

  const json rbac = api.query("/rbac");
  EXPECT_TRUE(rbac["denied"].empty()) << "calls the chart's ClusterRole refuses: " << rbac.dump();
  std::set<std::vector<std::string>> granted;
  for (const auto& rule : role["rules"]) {
    for (const auto& group : rule["apiGroups"]) {
      for (const auto& resource : rule["resources"]) {
        for (const auto& verb : rule["verbs"]) {
          granted.insert(std::vector<std::string>{
              group.get<std::string>(), resource.get<std::string>(), verb.get<std::string>()});
        }
      }
    }
  }
  for (const auto& used : rbac["used"]) granted.erase(used.get<std::vector<std::string>>());
  EXPECT_TRUE(granted.empty()) << "rules no call used: " << json(granted).dump();
}

}  // namespace

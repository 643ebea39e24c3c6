#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "palisade/model/container_view.h"
#include "palisade/policies/policy_set.h"

namespace palisade::policies {
namespace {

constexpr const char* kPolicy = R"(apiVersion: palisade.dev/v1
kind: WorkloadPolicy
metadata: {name: web}
spec:
  selector: {hosts: ["web-*"]}
  mode: audit
  process:
    allow:
      - {path: /usr/sbin/nginx}
      - {path: "/usr/bin/*", parents: [/usr/sbin/nginx], users: ["33"]}
  network:
    mode: enforce
    egress:
      default: deny
      allow:
        - {cidr: 10.0.0.0/8, ports: "5432", protocol: tcp}
        - {cidr: "2001:db8::/32"}
      deny:
        - {cidr: 10.9.0.0/16}
)";

std::shared_ptr<PolicySet> compile(const std::string& text, const std::string& host) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile({PolicySource{"web.yaml", text}}, errors);
  for (const auto& e : errors) ADD_FAILURE() << e.to_string();
  if (set) set->set_hostname(host);
  return set;
}

Event exec(const std::string& exe, const std::string& parent, uint32_t uid) {
  Event e;
  e.kind = EventKind::kProcessExec;
  find_field("process.exe")->assign(e, exe);
  find_field("parent.exe")->assign(e, parent);
  e.task.uid = uid;
  return e;
}

Event connect(const std::string& ip, uint16_t port) {
  Event e;
  e.kind = EventKind::kNetConnect;
  e.protocol = 6;
  find_field("net.remote_ip")->assign(e, ip);
  e.remote.port = port;
  return e;
}

std::vector<Finding> run(PolicySet& set, const Event& e) {
  std::vector<Finding> out;
  set.evaluate(e, out);
  return out;
}

TEST(WorkloadPolicy, AllowlistDecisionsCarryTheirReasonAndMode) {
  auto set = compile(kPolicy, "web-1");
  ASSERT_TRUE(set);
  EXPECT_TRUE(run(*set, exec("/usr/sbin/nginx", "/sbin/init", 0)).empty());
  EXPECT_TRUE(run(*set, exec("/usr/bin/logger", "/usr/sbin/nginx", 33)).empty());
  auto wrong_user = run(*set, exec("/usr/bin/logger", "/usr/sbin/nginx", 0));
  ASSERT_EQ(wrong_user.size(), 1U);
  auto shell = run(*set, exec("/tmp/sh", "/usr/sbin/nginx", 33));
  ASSERT_EQ(shell.size(), 1U);
  EXPECT_EQ(shell[0].verdict, "would block (audit)");
  EXPECT_EQ(shell[0].rule->name, "workload-policy/web/process");
  EXPECT_NE(
      shell[0].message.find("executable /tmp/sh (parent /usr/sbin/nginx, uid 33) matches no entry"),
      std::string::npos)
      << shell[0].message;
}

TEST(WorkloadPolicy, EgressByCidrPortProtocolWithDenyFirst) {
  auto set = compile(kPolicy, "web-1");
  ASSERT_TRUE(set);
  EXPECT_TRUE(run(*set, connect("10.1.2.3", 5432)).empty());
  EXPECT_TRUE(run(*set, connect("2001:db8::7", 443)).empty());
  auto other_port = run(*set, connect("10.1.2.3", 22));
  ASSERT_EQ(other_port.size(), 1U);
  EXPECT_EQ(other_port[0].verdict, "block (enforce)")
      << "the section's mode overrides the policy's";
  EXPECT_NE(other_port[0].message.find("10.1.2.3:22/tcp matches no egress allow rule"),
            std::string::npos);
  auto denied = run(*set, connect("10.9.0.1", 5432));
  ASSERT_EQ(denied.size(), 1U);
  EXPECT_NE(denied[0].message.find("matches deny rule 10.9.0.0/16"), std::string::npos);
}

TEST(WorkloadPolicy, SelectorDecidesWhereItApplies) {
  auto elsewhere = compile(kPolicy, "db-1");
  ASSERT_TRUE(elsewhere);
  EXPECT_TRUE(run(*elsewhere, exec("/tmp/sh", "/usr/sbin/nginx", 33)).empty());
  std::string k8s = kPolicy;
  k8s.replace(k8s.find("{hosts: [\"web-*\"]}"), 18, "{namespace: shop}");
  auto pods = compile(k8s, "web-1");
  ASSERT_TRUE(pods);
  EXPECT_TRUE(run(*pods, exec("/tmp/sh", "/usr/sbin/nginx", 33)).empty())
      << "a Kubernetes selector does not select host processes";
  Event in_shop = exec("/tmp/sh", "/usr/sbin/nginx", 33);
  find_field("k8s.namespace")->assign(in_shop, "shop");
  EXPECT_EQ(run(*pods, in_shop).size(), 1U);
  Event elsewhere_pod = exec("/tmp/sh", "/usr/sbin/nginx", 33);
  find_field("k8s.namespace")->assign(elsewhere_pod, "billing");
  EXPECT_TRUE(run(*pods, elsewhere_pod).empty());
}

TEST(WorkloadPolicy, ContainerSelectorsMustAllMatch) {
  std::string text = kPolicy;
  text.replace(text.find("{hosts: [\"web-*\"]}"), 18,
               "{namespace: [shop, \"shop-*\"], container: web, image: \"*/nginx:*\", "
               "podLabels: {app: web}}");
  auto set = compile(text, "node-1");
  ASSERT_TRUE(set);
  auto event = [](const std::string& ns, const std::string& container, const std::string& image,
                  const std::string& app) {
    Event e = exec("/tmp/sh", "/usr/sbin/nginx", 33);
    find_field("k8s.namespace")->assign(e, ns);
    find_field("container.name")->assign(e, container);
    find_field("container.image")->assign(e, image);
    auto view = std::make_shared<ContainerView>(*e.container);
    if (!app.empty()) view->pod_labels["app"] = app;
    e.container = view;
    return e;
  };
  EXPECT_EQ(run(*set, event("shop", "web", "docker.io/library/nginx:1.25", "web")).size(), 1U);
  EXPECT_EQ(run(*set, event("shop-eu", "web", "docker.io/library/nginx:1.25", "web")).size(), 1U);
  EXPECT_TRUE(run(*set, event("shop", "sidecar", "docker.io/library/nginx:1.25", "web")).empty());
  EXPECT_TRUE(run(*set, event("shop", "web", "docker.io/library/redis:7", "web")).empty());
  EXPECT_TRUE(run(*set, event("shop", "web", "docker.io/library/nginx:1.25", "api")).empty());
  EXPECT_TRUE(run(*set, event("shop", "web", "docker.io/library/nginx:1.25", "")).empty());
}

TEST(WorkloadPolicy, SchemaErrorsArePrecise) {
  std::vector<Diagnostic> errors;
  std::string bad = kPolicy;
  bad.replace(bad.find("10.0.0.0/8"), 10, "10.0.0.0/33");
  EXPECT_FALSE(PolicySet::compile({PolicySource{"web.yaml", bad}}, errors));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].line, 16);
  EXPECT_NE(errors[0].message.find("bad prefix length"), std::string::npos);
  errors.clear();
  bad = kPolicy;
  bad.replace(bad.find("mode: audit"), 11, "mode: strict");
  EXPECT_FALSE(PolicySet::compile({PolicySource{"web.yaml", bad}}, errors));
  EXPECT_NE(
      errors.at(0).to_string().find("web.yaml:6:9: error: spec.mode: expected audit or enforce"),
      std::string::npos)
      << errors.at(0).to_string();
}

TEST(WorkloadPolicy, DriftDefaultsToBlockAndTakesAlertOrAllow) {
  auto drift_of = [](const std::string& line) {
    std::string text = kPolicy;
    if (!line.empty()) text.replace(text.find("    allow:\n"), 0, "    " + line + "\n");
    auto set = compile(text, "web-1");
    EXPECT_TRUE(set) << text;
    return set ? set->workload_policies().at(0)->process_drift : DriftAction::kBlock;
  };
  EXPECT_EQ(drift_of(""), DriftAction::kBlock);
  EXPECT_EQ(drift_of("drift: block"), DriftAction::kBlock);
  EXPECT_EQ(drift_of("drift: alert"), DriftAction::kAlert);
  EXPECT_EQ(drift_of("drift: allow"), DriftAction::kAllow);

  std::vector<Diagnostic> errors;
  std::string bad = kPolicy;
  bad.replace(bad.find("    allow:\n"), 0, "    drift: deny\n");
  EXPECT_FALSE(PolicySet::compile({PolicySource{"web.yaml", bad}}, errors));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].to_string(),
            "web.yaml:8:12: error: spec.process.drift: expected block, alert or allow, got 'deny'");
  errors.clear();
  bad = kPolicy;
  bad.replace(bad.find("    allow:\n"), 0, "    drift: [block]\n");
  EXPECT_FALSE(PolicySet::compile({PolicySource{"web.yaml", bad}}, errors));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(
      errors[0].to_string().find("web.yaml:8:12: error: spec.process.drift: expected a string"),
      std::string::npos)
      << errors[0].to_string();
}

}  // namespace
}  // namespace palisade::policies

namespace palisade::policies {
namespace {

TEST(WorkloadPolicy, ProcessesSelectorCoversADaemonAndItsChildren) {
  std::string text = kPolicy;
  text.replace(text.find("{hosts: [\"web-*\"]}"), 18, "{processes: [\"*/nginx\"]}");
  auto set = compile(text, "any-host");
  ASSERT_TRUE(set);
  Event child = exec("/tmp/sh", "/usr/sbin/nginx", 33);
  find_field("ancestor.exe")->assign(child, "/usr/sbin/nginx");
  EXPECT_EQ(run(*set, child).size(), 1U) << "a child of the daemon is in the workload";
  EXPECT_TRUE(run(*set, exec("/tmp/sh", "/usr/bin/bash", 0)).empty()) << "others are not";
}

}  // namespace
}  // namespace palisade::policies

namespace palisade::policies {
namespace {

constexpr const char* kFilesPolicy = R"(apiVersion: palisade.dev/v1
kind: WorkloadPolicy
metadata: {name: app}
spec:
  selector: {hosts: ["*"]}
  mode: enforce
  files:
    watch:
      - path: /etc
        exclude: ["*.swp", /etc/mtab]
      - {path: /srv/app/conf, recursive: false, attributes: [mode, owner]}
    readOnly: [/usr/bin/]
    protect: [/etc/passwd]
  network:
    mode: audit
    ingress:
      allow:
        - {cidr: 10.0.0.0/8, ports: "8080", protocol: tcp}
      deny:
        - {cidr: 10.66.0.0/16}
)";

Event file_event(EventKind kind, const std::string& path, const std::string& new_path = "") {
  Event e;
  e.kind = kind;
  find_field("file.path")->assign(e, path);
  if (!new_path.empty()) find_field("file.new_path")->assign(e, new_path);
  find_field("process.exe")->assign(e, "/usr/bin/vi");
  e.task.tgid = 42;
  return e;
}

Event accept_from(const std::string& ip, uint16_t local_port) {
  Event e;
  e.kind = EventKind::kNetAccept;
  e.protocol = 6;
  find_field("net.remote_ip")->assign(e, ip);
  e.remote.port = 40000;
  e.local.port = local_port;
  return e;
}

TEST(WorkloadPolicy, IngressChecksThePeerAndTheLocalPort) {
  auto set = compile(kFilesPolicy, "host");
  ASSERT_TRUE(set);
  EXPECT_TRUE(run(*set, accept_from("10.1.2.3", 8080)).empty());
  auto other_port = run(*set, accept_from("10.1.2.3", 22));
  ASSERT_EQ(other_port.size(), 1U);
  EXPECT_EQ(other_port[0].rule->name, "workload-policy/app/ingress");
  EXPECT_EQ(other_port[0].verdict, "would block (audit)");
  EXPECT_NE(other_port[0].message.find("connection from 10.1.2.3 to local port 22/tcp matches no "
                                       "ingress allow rule"),
            std::string::npos)
      << other_port[0].message;
  auto denied = run(*set, accept_from("10.66.1.1", 8080));
  ASSERT_EQ(denied.size(), 1U);
  EXPECT_NE(denied[0].message.find("matches deny rule 10.66.0.0/16"), std::string::npos);
  EXPECT_TRUE(run(*set, connect("192.0.2.1", 443)).empty()) << "no egress section: not checked";
}

TEST(WorkloadPolicy, WatchedPathsReportEveryChangeWithWhoMadeIt) {
  auto set = compile(kFilesPolicy, "host");
  ASSERT_TRUE(set);
  auto hosts = run(*set, file_event(EventKind::kFileOpen, "/etc/hosts"));
  ASSERT_EQ(hosts.size(), 1U);
  EXPECT_EQ(hosts[0].rule->name, "workload-policy/app/files");
  EXPECT_EQ(hosts[0].rule->severity, Severity::kMedium);
  EXPECT_EQ(hosts[0].verdict, "changed");
  EXPECT_EQ(hosts[0].message, "app: /etc/hosts opened for writing by /usr/bin/vi (pid 42, uid 0)");
  EXPECT_EQ(run(*set, file_event(EventKind::kFileUnlink, "/etc/ssh/sshd_config")).size(), 1U)
      << "recursive by default";
  EXPECT_TRUE(run(*set, file_event(EventKind::kFileOpen, "/etc/.hosts.swp")).empty())
      << "excluded by name";
  EXPECT_TRUE(run(*set, file_event(EventKind::kFileOpen, "/etc/mtab")).empty())
      << "excluded by path";
  EXPECT_TRUE(run(*set, file_event(EventKind::kFileOpen, "/etcetera/x")).empty());
  EXPECT_TRUE(run(*set, file_event(EventKind::kFileOpen, "/srv/app/conf/app.ini")).empty())
      << "content is not watched there";
  Event chmod = file_event(EventKind::kFileChmod, "/srv/app/conf/app.ini");
  chmod.mode = 0666;
  auto mode = run(*set, chmod);
  ASSERT_EQ(mode.size(), 1U);
  EXPECT_NE(mode[0].message.find("mode set to 0666"), std::string::npos);
  EXPECT_TRUE(run(*set, file_event(EventKind::kFileChown, "/srv/app/conf/sub/x")).empty())
      << "not recursive";
  Event failed = file_event(EventKind::kFileOpen, "/etc/hosts");
  failed.result = -13;
  EXPECT_TRUE(run(*set, failed).empty()) << "a failed open changed nothing";
}

TEST(WorkloadPolicy, ReadOnlyAndProtectedPathsAreViolations) {
  auto set = compile(kFilesPolicy, "host");
  ASSERT_TRUE(set);
  auto write = run(*set, file_event(EventKind::kFileOpen, "/usr/bin/ls"));
  ASSERT_EQ(write.size(), 1U);
  EXPECT_EQ(write[0].rule->name, "workload-policy/app/read-only");
  EXPECT_EQ(write[0].rule->response, Response::kBlock);
  EXPECT_EQ(write[0].verdict, "block (enforce)");
  auto passwd = run(*set, file_event(EventKind::kFileOpen, "/etc/passwd"));
  ASSERT_EQ(passwd.size(), 1U) << "protect wins over watch: one decision per path";
  EXPECT_EQ(passwd[0].rule->name, "workload-policy/app/protect");
  EXPECT_EQ(passwd[0].rule->response, Response::kRestore);
  EXPECT_EQ(passwd[0].verdict, "restore (enforce)");
  // A rename reports both ends: the old name went away, the new name was replaced.
  auto rename = run(*set, file_event(EventKind::kFileRename, "/tmp/new", "/etc/passwd"));
  ASSERT_EQ(rename.size(), 1U);
  EXPECT_NE(rename[0].message.find("/etc/passwd replaced by a rename of /tmp/new"),
            std::string::npos)
      << rename[0].message;
  auto both = run(*set, file_event(EventKind::kFileRename, "/etc/group", "/usr/bin/group"));
  EXPECT_EQ(both.size(), 2U);
}

TEST(WorkloadPolicy, WritablePathsConfineWrites) {
  auto set = compile(R"(apiVersion: palisade.dev/v1
kind: WorkloadPolicy
metadata: {name: worker}
spec:
  selector: {processes: ["*/worker"]}
  files:
    writable: [/var/lib/worker, "/tmp/worker-*"]
)",
                     "host");
  ASSERT_TRUE(set);
  auto write = [&](const std::string& path) {
    Event e = file_event(EventKind::kFileOpen, path);
    find_field("process.exe")->assign(e, "/usr/bin/worker");
    return run(*set, e);
  };
  EXPECT_TRUE(write("/var/lib/worker/state.db").empty());
  EXPECT_TRUE(write("/tmp/worker-1/x").empty());
  auto outside = write("/var/lib/other");
  ASSERT_EQ(outside.size(), 1U);
  EXPECT_EQ(outside[0].verdict, "would block (audit)");
  EXPECT_NE(outside[0].message.find("outside the writable paths"), std::string::npos);
}

TEST(WorkloadPolicy, FilesSchemaErrorsArePrecise) {
  std::vector<Diagnostic> errors;
  auto fails_with = [&](const std::string& from, const std::string& to) {
    std::string bad = kFilesPolicy;
    bad.replace(bad.find(from), from.size(), to);
    errors.clear();
    EXPECT_FALSE(PolicySet::compile({PolicySource{"app.yaml", bad}}, errors));
    return errors.empty() ? std::string() : errors[0].to_string();
  };
  EXPECT_NE(fails_with("[/usr/bin/]", "[usr/bin]")
                .find("app.yaml:12:16: error: spec.files.readOnly[]: expected an absolute path"),
            std::string::npos);
  EXPECT_NE(fails_with("[mode, owner]", "[mode, size]")
                .find("spec.files.watch[].attributes: expected content, mode or owner, got 'size'"),
            std::string::npos);
  EXPECT_NE(fails_with("recursive: false", "recursive: maybe")
                .find("spec.files.watch[].recursive: expected true or false"),
            std::string::npos);
  EXPECT_NE(fails_with("protect:", "protected:").find("spec.files.protected: unknown field"),
            std::string::npos);
  EXPECT_NE(fails_with("      allow:\n        - {cidr: 10.0.0.0/8",
                       "      allow:\n        - {cidr: 10.0.0.0/x")
                .find("spec.network.ingress.allow[].cidr: bad prefix length"),
            std::string::npos);
}

}  // namespace
}  // namespace palisade::policies

namespace palisade::policies {
namespace {

TEST(WorkloadPolicy, PinnedHashesAreCheckedThroughTheHasher) {
  const std::string good(64, 'a');
  auto set = compile(R"(apiVersion: palisade.dev/v1
kind: WorkloadPolicy
metadata: {name: pinned}
spec:
  selector: {hosts: ["*"]}
  process:
    allow:
      - {path: /usr/bin/app, sha256: )" +
                         good + R"(}
      - {path: /usr/bin/free}
)",
                     "host");
  ASSERT_TRUE(set);
  std::string current = good;
  int calls = 0;
  set->set_executable_hasher([&](const Event&) {
    ++calls;
    return current;
  });
  EXPECT_TRUE(run(*set, exec("/usr/bin/app", "/bin/sh", 0)).empty());
  EXPECT_TRUE(run(*set, exec("/usr/bin/free", "/bin/sh", 0)).empty());
  EXPECT_EQ(calls, 1) << "only entries that pin a hash need one";
  current = std::string(64, 'b');
  auto changed = run(*set, exec("/usr/bin/app", "/bin/sh", 0));
  ASSERT_EQ(changed.size(), 1U);
  EXPECT_NE(changed[0].message.find("is allowlisted by path but its sha256 " + current +
                                    " is not the allowed " + good),
            std::string::npos)
      << changed[0].message;
  current.clear();
  auto unknown = run(*set, exec("/usr/bin/app", "/bin/sh", 0));
  ASSERT_EQ(unknown.size(), 1U);
  EXPECT_NE(unknown[0].message.find("its sha256 could not be computed"), std::string::npos);
}

}  // namespace
}  // namespace palisade::policies

namespace palisade::policies {
namespace {

constexpr const char* kPeerPolicy = R"(apiVersion: palisade.dev/v1
kind: WorkloadPolicy
metadata: {name: api}
spec:
  selector: {cgroups: ["/api"]}
  mode: enforce
  network:
    egress:
      allow:
        - {workload: {namespace: "data*", podLabels: {app: db}}, ports: "5432", protocol: tcp}
    management:
      - {cidr: 10.0.0.1/32, ports: "22"}
)";

TEST(WorkloadPolicy, PeersNamedByWorkloadResolveThroughTheLookup) {
  auto set = compile(kPeerPolicy, "node");
  ASSERT_NE(set, nullptr);
  const auto& policy = *set->workload_policies().at(0);
  ASSERT_TRUE(policy.egress.allow.at(0).workload.has_value());
  EXPECT_EQ(policy.egress.allow[0].text, "workload{ns=data*,app=db}:5432/tcp");
  EXPECT_EQ(policy.cgroups, std::vector<std::string>{"/api"});
  EXPECT_EQ(policy.management.size(), 1U);
  EXPECT_TRUE(set->uses_workload_peers());

  Event e = connect("10.1.2.3", 5432);
  e.cgroup_path = "/api";
  // Without a lookup the rule matches nothing: default deny.
  EXPECT_EQ(run(*set, e).size(), 1U);
  set->set_peer_lookup([](const PeerSelector& s, uint16_t, const std::array<uint8_t, 16>& addr) {
    return s.matches("data-eu", {{"app", "db"}}) && addr[0] == 10 && addr[3] == 3;
  });
  EXPECT_TRUE(run(*set, e).empty());
  EXPECT_EQ(run(*set, connect("10.1.2.4", 5432)).size(), 0U) << "outside /api: not selected";
  Event other = connect("10.1.2.4", 5432);
  other.cgroup_path = "/api";
  EXPECT_EQ(run(*set, other).size(), 1U);
}

TEST(WorkloadPolicy, PeerRulesNeedAWorkloadOrACidrNotBoth) {
  std::vector<Diagnostic> errors;
  std::string bad = kPeerPolicy;
  bad.replace(bad.find("{workload:"), 10, "{cidr: 10.0.0.0/8, workload:");
  EXPECT_FALSE(PolicySet::compile({PolicySource{"api.yaml", bad}}, errors));
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].to_string().find("give cidr or workload, not both"), std::string::npos)
      << errors[0].to_string();
  EXPECT_EQ(errors[0].line, 10);
}

}  // namespace
}  // namespace palisade::policies

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "palisade/policies/policy_set.h"

namespace palisade::policies {
namespace {

using agent::EventKind;

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
      << "a Kubernetes selector selects nothing until events carry pod identity";
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

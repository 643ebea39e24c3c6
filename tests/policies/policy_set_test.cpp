#include "palisade/policies/policy_set.h"

#include <gtest/gtest.h>

namespace palisade::policies {
namespace {

std::shared_ptr<PolicySet> compile_ok(const std::string& yaml) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile({PolicySource{"test.yaml", yaml}}, errors);
  for (const auto& e : errors) ADD_FAILURE() << e.to_string();
  return set;
}

std::vector<Diagnostic> compile_errors(const std::string& yaml) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile({PolicySource{"bad.yaml", yaml}}, errors);
  EXPECT_EQ(set, nullptr);
  return errors;
}

TEST(PolicySet, DefaultRulesCompileAndPassTheirOwnTests) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile(default_rule_sources(), errors);
  for (const auto& e : errors) ADD_FAILURE() << e.to_string();
  ASSERT_NE(set, nullptr);
  EXPECT_GE(set->rules().size(), 14U);
  for (const auto& rule : set->rules()) {
    EXPECT_GE(rule->tests.size(), 2U) << rule->name << " needs a positive and a negative test";
  }
  for (const auto& r : set->run_embedded_tests()) {
    EXPECT_TRUE(r.passed) << r.rule->name << " / " << r.test->name << ": " << r.detail;
  }
}

TEST(PolicySet, ErrorsNameFileLineColumnAndField) {
  auto errors = compile_errors(R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: r1}
spec:
  condition: process.uid = root
  output: x
)");
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].line, 5);
  EXPECT_EQ(errors[0].column, 28) << errors[0].to_string();
  EXPECT_EQ(errors[0].field, "spec.condition");
  EXPECT_NE(errors[0].to_string().find("bad.yaml:5:28: error: spec.condition:"), std::string::npos);

  errors = compile_errors(R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: r1}
spec:
  condition: event.kind = exec
  output: "{process.exee}"
  severity: severe
)");
  ASSERT_EQ(errors.size(), 1U) << "the first problem of a document stops that document";
  EXPECT_NE(errors[0].message.find("unknown field '{process.exee}'"), std::string::npos);

  errors = compile_errors("apiVersion: v2\nkind: DetectionRule\nmetadata: {name: a}\nspec: {}\n");
  EXPECT_NE(errors[0].message.find("expected palisade.dev/v1"), std::string::npos);
  errors =
      compile_errors("apiVersion: palisade.dev/v1\nkind: Rule\nmetadata: {name: a}\nspec: {}\n");
  EXPECT_NE(errors[0].message.find("unknown kind 'Rule'"), std::string::npos);
  errors = compile_errors("key: [unclosed\n");
  EXPECT_EQ(errors[0].field, "(yaml)");
}

TEST(PolicySet, OversizedSourcesAreRefusedBeforeParsing) {
  const std::string rule =
      "apiVersion: palisade.dev/v1\nkind: List\nmetadata: {name: l}\nspec: {items: [a]}\n";
  std::string big = rule + "# " + std::string(kMaxPolicySourceBytes, 'x') + "\n";
  auto errors = compile_errors(big);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].field, "(file)");
  EXPECT_NE(errors[0].message.find("more than the 4194304"), std::string::npos)
      << errors[0].to_string();

  std::string many;
  for (size_t i = 0; i <= kMaxDocumentsPerSource; ++i) {
    many += "---\napiVersion: palisade.dev/v1\nkind: List\nmetadata: {name: l" + std::to_string(i) +
            "}\nspec: {items: [a]}\n";
  }
  errors = compile_errors(many);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].field, "(file)");
  EXPECT_EQ(errors[0].line, static_cast<int>(5 * kMaxDocumentsPerSource + 2))
      << "the line of the first document over the limit: " << errors[0].to_string();
}

TEST(PolicySet, EveryBadDocumentIsReportedInOneRun) {
  auto errors = compile_errors(R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: a}
spec: {condition: "nope = 1", output: x}
---
apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: b}
spec: {condition: "event.kind = exec", output: x, tags: nope}
)");
  EXPECT_EQ(errors.size(), 2U);
}

Event deletion(uint32_t pid, uint64_t t_ns) {
  Event e;
  e.kind = EventKind::kFileUnlink;
  e.task.tgid = pid;
  e.mono_ns = t_ns;
  e.path = "/data/f";
  return e;
}

TEST(PolicySet, ThresholdFiresOncePerWindowPerKey) {
  auto set = compile_ok(R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: burst}
spec:
  condition: event.kind = unlink
  threshold: {count: 5, window: 1s, by: process}
  output: "burst by {process.pid}"
)");
  ASSERT_NE(set, nullptr);
  std::vector<Finding> findings;
  for (uint64_t i = 0; i < 20; ++i) set->evaluate(deletion(7, i * 1000), findings);
  ASSERT_EQ(findings.size(), 1U);
  EXPECT_EQ(findings[0].message, "burst by 7");
  EXPECT_EQ(findings[0].count, 5U);
  for (uint64_t i = 0; i < 4; ++i) set->evaluate(deletion(8, i * 1000), findings);
  EXPECT_EQ(findings.size(), 1U) << "another process has its own count";
  // Slow deletions never add up to a burst.
  for (uint64_t i = 0; i < 20; ++i) set->evaluate(deletion(9, i * 2'000'000'000ULL), findings);
  EXPECT_EQ(findings.size(), 1U);
  // A new window can fire again.
  for (uint64_t i = 0; i < 5; ++i) set->evaluate(deletion(7, 5'000'000'000ULL + i), findings);
  EXPECT_EQ(findings.size(), 2U);
}

TEST(PolicySet, ExceptionsSuppressAndDispatchIsByKind) {
  auto set = compile_ok(R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: tmp-exec}
spec:
  condition: event.kind = exec and process.exe startswith /tmp/
  exceptions: [process.exe = /tmp/allowed]
  output: "{process.exe}"
  severity: critical
  tags: [T1204]
  response: kill
)");
  ASSERT_NE(set, nullptr);
  std::vector<Finding> findings;
  Event e;
  e.kind = EventKind::kProcessExec;
  find_field("process.exe")->assign(e, "/tmp/allowed");
  set->evaluate(e, findings);
  EXPECT_TRUE(findings.empty());
  find_field("process.exe")->assign(e, "/tmp/evil");
  set->evaluate(e, findings);
  ASSERT_EQ(findings.size(), 1U);
  EXPECT_EQ(findings[0].rule->severity, Severity::kCritical);
  EXPECT_EQ(findings[0].rule->response, Response::kKill);
  e.kind = EventKind::kFileOpen;
  set->evaluate(e, findings);
  EXPECT_EQ(findings.size(), 1U);
}

TEST(PolicySet, DigestChangesWithContent) {
  std::vector<Diagnostic> errors;
  auto a = PolicySet::compile(default_rule_sources(), errors);
  auto sources = default_rule_sources();
  sources[0].text += "\n# comment\n";
  auto b = PolicySet::compile(sources, errors);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->digest(), b->digest());
  EXPECT_EQ(a->digest().size(), 16U);
}

}  // namespace
}  // namespace palisade::policies

namespace palisade::policies {
namespace {

TEST(PolicySet, MalformedStreamsFailInsteadOfHanging) {
  // yaml-cpp 0.7's LoadAll loops forever on this; the loader must answer with an error.
  auto errors = compile_errors(", a");
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].field, "(document)");
}

TEST(PolicySet, LinesAreCountedAcrossDocuments) {
  auto errors = compile_errors(R"(# a comment
apiVersion: palisade.dev/v1
kind: List
metadata: {name: ok}
spec: {items: [a]}
---
apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: second}
spec:
  condition: event.kind = exec
  output: x
  severity: severe
)");
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].line, 13) << errors[0].to_string();
  EXPECT_EQ(errors[0].column, 13);
}

}  // namespace
}  // namespace palisade::policies

namespace palisade::policies {
namespace {

TEST(PolicySet, DedupeReportsOnlyWhatIsNewInTheWindow) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile(default_rule_sources(), errors);
  ASSERT_TRUE(set);
  auto listen = [](const std::string& exe, const std::string& port, uint64_t t) {
    Event e;
    e.kind = EventKind::kNetListen;
    e.mono_ns = t;
    find_field("process.exe")->assign(e, exe);
    find_field("net.local_port")->assign(e, port);
    find_field("net.local_ip")->assign(e, "0.0.0.0");
    return e;
  };
  std::vector<Finding> findings;
  set->evaluate(listen("/usr/sbin/nginx", "80", 1), findings);
  set->evaluate(listen("/usr/sbin/nginx", "80", 2), findings);   // a restart: not news
  set->evaluate(listen("/usr/sbin/nginx", "443", 3), findings);  // a new port is
  set->evaluate(listen("/tmp/bd", "80", 4), findings);           // so is a new program
  EXPECT_EQ(findings.size(), 3U);
  set->evaluate(listen("/usr/sbin/nginx", "80", 25ULL * 3600 * 1'000'000'000), findings);
  EXPECT_EQ(findings.size(), 4U) << "news again after the window";
}

}  // namespace
}  // namespace palisade::policies

namespace palisade::policies {
namespace {

TEST(PolicySet, ANamespaceScopeCannotBeWidenedByTheCondition) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile({PolicySource{"scoped.yaml", R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: scoped}
spec:
  namespaces: [shop]
  condition: event.kind = exec or event.kind = open
  output: x
)"}},
                                errors);
  ASSERT_NE(set, nullptr) << (errors.empty() ? "" : errors[0].to_string());
  auto in = [](const std::string& ns) {
    Event e;
    e.kind = EventKind::kProcessExec;
    if (!ns.empty()) find_field("k8s.namespace")->assign(e, ns);
    return e;
  };
  std::vector<Finding> out;
  set->evaluate(in("shop"), out);
  EXPECT_EQ(out.size(), 1U);
  set->evaluate(in("billing"), out);
  set->evaluate(in(""), out);
  EXPECT_EQ(out.size(), 1U) << "another namespace and the host are out of scope";
}

}  // namespace
}  // namespace palisade::policies

namespace palisade::policies {
namespace {

// Enforcement denials are kinds 64 and up: rules on them must compile and be indexed (a 64-bit
// kind set once threw on them; the fuzzer found it).
TEST(PolicySet, RulesOnEnforcementDenialsMatchThem) {
  auto set = compile_ok(R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: denied-twice}
spec:
  condition: event.kind in (net_deny, exec_deny)
  output: "denied {process.exe}"
)");
  ASSERT_NE(set, nullptr);
  Event event;
  event.kind = EventKind::kExecDeny;
  std::vector<Finding> findings;
  set->evaluate(event, findings);
  EXPECT_EQ(findings.size(), 1U);
  event.kind = EventKind::kNetDeny;
  findings.clear();
  set->evaluate(event, findings);
  EXPECT_EQ(findings.size(), 1U);
  event.kind = EventKind::kProcessExec;
  findings.clear();
  set->evaluate(event, findings);
  EXPECT_TRUE(findings.empty());
}

}  // namespace
}  // namespace palisade::policies

#include <gtest/gtest.h>

#include "palisade/policies/policy_set.h"

namespace palisade::policies {
namespace {

constexpr const char* kPolicy = R"(apiVersion: palisade.dev/v1
kind: VirtualMachinePolicy
metadata: {name: web-vms}
spec:
  mode: enforce
  selector:
    names: ["web-*"]
    labels: {tier: web}
  detections:
    cpuSaturation: {percent: 85, for: 2m, response: suspend}
    egressSpike: {factor: 8, minBytesPerSecond: 2048, learning: 10m, for: 30s, response: isolate}
    diskWriteBurst: {bytesPerSecond: 1000000, for: 10s, response: snapshot, severity: critical}
  inspection:
    interval: 6h
    method: live
    paths: [/usr/bin, /etc]
    timeLimit: 5m
)";

std::vector<Diagnostic> errors_of(const std::string& text) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile({PolicySource{"vm.yaml", text}}, errors);
  EXPECT_EQ(set == nullptr, !errors.empty());
  return errors;
}

VmView vm(std::string name, std::vector<std::pair<std::string, std::string>> labels) {
  VmView v;
  v.name = std::move(name);
  v.host = "qemu:///system";
  v.labels = std::move(labels);
  return v;
}

TEST(VmPolicy, ParsesDetectionsInspectionAndTheirRules) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile({PolicySource{"vm.yaml", kPolicy}}, errors);
  ASSERT_TRUE(set) << (errors.empty() ? "" : errors[0].to_string());
  ASSERT_EQ(set->vm_policies().size(), 1U);
  const VmPolicy& p = *set->vm_policies()[0];
  EXPECT_EQ(p.mode, Mode::kEnforce);
  EXPECT_TRUE(p.cpu.enabled);
  EXPECT_EQ(p.cpu.percent, 85);
  EXPECT_EQ(p.cpu.sustained_ns, 120'000'000'000ULL);
  EXPECT_EQ(p.cpu.rule->name, "vm-policy/web-vms/cpu-saturation");
  EXPECT_EQ(p.cpu.rule->response, Response::kSuspend);
  EXPECT_DOUBLE_EQ(p.egress.factor, 8);
  EXPECT_EQ(p.egress.min_bytes_per_second, 2048);
  EXPECT_EQ(p.egress.learning_ns, 600'000'000'000ULL);
  EXPECT_EQ(p.egress.rule->response, Response::kIsolate);
  EXPECT_EQ(p.disk_writes.bytes_per_second, 1'000'000);
  EXPECT_EQ(p.disk_writes.rule->severity, Severity::kCritical);
  EXPECT_TRUE(p.inspection.enabled);
  EXPECT_EQ(p.inspection.method, "live");
  EXPECT_EQ(p.inspection.paths, (std::vector<std::string>{"/usr/bin", "/etc"}));
  EXPECT_EQ(p.inspection.time_limit_ns, 300'000'000'000ULL);
}

TEST(VmPolicy, AuditModeReportsButDoesNotRespond) {
  std::string text = kPolicy;
  text.replace(text.find("mode: enforce"), 13, "mode: audit");
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile({PolicySource{"vm.yaml", text}}, errors);
  ASSERT_TRUE(set);
  const VmPolicy& p = *set->vm_policies()[0];
  EXPECT_EQ(p.cpu.rule->response, Response::kAlert);
  EXPECT_EQ(p.cpu.configured_response, Response::kSuspend);
}

TEST(VmPolicy, SelectsVirtualMachinesByNameAndMetadataLabels) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile({PolicySource{"vm.yaml", kPolicy}}, errors);
  ASSERT_TRUE(set);
  const VmSelector& s = set->vm_policies()[0]->selector;
  EXPECT_TRUE(s.matches(vm("web-1", {{"tier", "web"}, {"owner", "shop"}})));
  EXPECT_FALSE(s.matches(vm("web-1", {{"tier", "db"}})));
  EXPECT_FALSE(s.matches(vm("web-1", {})));
  EXPECT_FALSE(s.matches(vm("db-1", {{"tier", "web"}})));
}

TEST(VmPolicy, BadValuesNameTheFileLineAndField) {
  std::string text = kPolicy;
  text.replace(text.find("percent: 85"), 11, "percent: 150");
  auto errors = errors_of(text);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].source, "vm.yaml");
  EXPECT_EQ(errors[0].line, 10);
  EXPECT_EQ(errors[0].field, "spec.detections.cpuSaturation.percent");

  text = kPolicy;
  text.replace(text.find("response: suspend"), 17, "response: kill");
  errors = errors_of(text);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].field, "spec.detections.cpuSaturation.response");

  text = kPolicy;
  text.replace(text.find("method: live"), 12, "method: peek");
  errors = errors_of(text);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].field, "spec.inspection.method");
  EXPECT_EQ(errors[0].line, 15);

  errors = errors_of(
      "apiVersion: palisade.dev/v1\nkind: VirtualMachinePolicy\nmetadata: {name: x}\n"
      "spec:\n  selector: {names: [a]}\n");
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].message.find("expected detections, inspection or both"), std::string::npos);
}

TEST(VmPolicy, RulesMatchVirtualMachineFields) {
  std::vector<Diagnostic> errors;
  auto set = PolicySet::compile({PolicySource{"r.yaml", R"(apiVersion: palisade.dev/v1
kind: DetectionRule
metadata: {name: new-key-on-web}
spec:
  condition: event.kind = vm_guest_change and vm.action = authorized-key-added and vm.label = "tier=web"
  output: "new SSH key on {vm.name}: {vm.detail}"
  severity: high
  response: snapshot
)"}},
                                errors);
  ASSERT_TRUE(set) << (errors.empty() ? "" : errors[0].to_string());
  Event e;
  e.kind = EventKind::kVmGuestChange;
  e.vm = std::make_shared<VmView>(vm("web-1", {{"tier", "web"}}));
  e.vm_activity.action = "authorized-key-added";
  e.vm_activity.detail = "alice SHA256:abc";
  std::vector<Finding> findings;
  set->evaluate(e, findings);
  ASSERT_EQ(findings.size(), 1U);
  EXPECT_EQ(findings[0].message, "new SSH key on web-1: alice SHA256:abc");
  EXPECT_EQ(findings[0].rule->response, Response::kSnapshot);
  EXPECT_TRUE(is_vm_response(Response::kSnapshot));

  e.vm = std::make_shared<VmView>(vm("web-1", {{"tier", "db"}}));
  findings.clear();
  set->evaluate(e, findings);
  EXPECT_TRUE(findings.empty());
}

}  // namespace
}  // namespace palisade::policies

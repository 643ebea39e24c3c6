// Which cgroups each workload policy holds (bind_workloads): pure logic over a policy set, the
// containers the registry knows and the cgroups a scan found; no kernel.
#include <gtest/gtest.h>

#include <memory>

#include "palisade/agent/enforcer.h"
#include "palisade/model/container_view.h"
#include "palisade/policies/policy_set.h"

namespace palisade::agent {
namespace {

std::shared_ptr<policies::PolicySet> compile(const std::string& text) {
  std::vector<policies::Diagnostic> errors;
  auto set = policies::PolicySet::compile({policies::PolicySource{"test.yaml", text}}, errors);
  for (const auto& e : errors) ADD_FAILURE() << e.to_string();
  return set;
}

std::string network_policy(const std::string& name, const std::string& selector) {
  return "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: " + name +
         "}\nspec:\n  selector: " + selector +
         "\n  network:\n    mode: enforce\n    egress: {default: deny}\n";
}

ContainerRef container(const std::string& name, uint64_t cgroup_id,
                       std::map<std::string, std::string> pod_labels = {},
                       const std::string& pod_namespace = "shop", bool sandbox = false) {
  auto c = std::make_shared<ContainerView>();
  c->id = name + "-0123456789abcdef";
  c->name = name;
  c->image = "registry.local/" + name + ":1";
  c->runtime_namespace = "k8s.io";
  c->pod_name = name + "-pod";
  c->pod_namespace = pod_namespace;
  c->pod_labels = std::move(pod_labels);
  c->cgroup_id = cgroup_id;
  c->cgroup_path = "/k8s.io/" + c->id;
  c->init_pid = static_cast<uint32_t>(cgroup_id + 1000);
  c->sandbox = sandbox;
  return c;
}

TEST(WorkloadBinder, BindsCgroupsByPathGlob) {
  auto set = compile(network_policy("batch", "{cgroups: [\"/batch.slice/*\"]}"));
  const std::vector<CgroupEntry> cgroups = {
      {"/", 1}, {"/batch.slice/job-1", 10}, {"/batch.slice/job-2", 11}, {"/system.slice", 12}};
  const std::vector<WorkloadBinding> bound = bind_workloads(*set, {}, cgroups);
  ASSERT_EQ(bound.size(), 2u);
  EXPECT_EQ(bound[0].cgroup_id, 10u);
  EXPECT_EQ(bound[0].cgroup_path, "/batch.slice/job-1");
  EXPECT_EQ(bound[0].workload, "cgroup /batch.slice/job-1");
  EXPECT_EQ(bound[0].policy->name, "batch");
  EXPECT_EQ(bound[0].rootfs, "") << "a host cgroup: paths are the host's";
  EXPECT_EQ(bound[1].cgroup_id, 11u);
}

TEST(WorkloadBinder, BindsContainersBySelectorsAndNamesTheirRootfs) {
  auto set = compile(network_policy("web", "{namespace: shop, podLabels: {app: web}}"));
  const std::vector<ContainerRef> containers = {
      container("web", 20, {{"app", "web"}}), container("db", 21, {{"app", "db"}}),
      container("web-other-ns", 22, {{"app", "web"}}, "staging")};
  const std::vector<WorkloadBinding> bound = bind_workloads(*set, containers, {});
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(bound[0].cgroup_id, 20u);
  EXPECT_EQ(bound[0].workload, "container web (pod shop/web-pod)");
  EXPECT_EQ(bound[0].root_pid, 1020u);
  EXPECT_EQ(bound[0].rootfs, "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" +
                                 containers[0]->id + "/rootfs");
}

TEST(WorkloadBinder, EverySelectorMustMatch) {
  auto set = compile(network_policy("pinned", "{container: \"web*\", image: \"*/web:1\"}"));
  const std::vector<ContainerRef> containers = {container("web", 30), container("webhook", 31)};
  const std::vector<WorkloadBinding> bound = bind_workloads(*set, containers, {});
  ASSERT_EQ(bound.size(), 1u) << "webhook's image is not */web:1";
  EXPECT_EQ(bound[0].cgroup_id, 30u);
}

TEST(WorkloadBinder, SkipsSandboxesAndContainersWithoutACgroup) {
  auto set = compile(network_policy("all-shop", "{namespace: shop}"));
  const std::vector<ContainerRef> containers = {container("pause", 40, {}, "shop", true),
                                                container("starting", 0), container("app", 41)};
  const std::vector<WorkloadBinding> bound = bind_workloads(*set, containers, {});
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(bound[0].cgroup_id, 41u);
}

TEST(WorkloadBinder, TheFirstPolicyInLoadOrderHoldsACgroup) {
  auto set = compile(network_policy("first", "{namespace: shop}") + "---\n" +
                     network_policy("second", "{podLabels: {app: web}}"));
  const std::vector<WorkloadBinding> bound =
      bind_workloads(*set, {container("web", 50, {{"app", "web"}})}, {});
  ASSERT_EQ(bound.size(), 1u);
  EXPECT_EQ(bound[0].policy->name, "first");
}

TEST(WorkloadBinder, PoliciesWithNothingToEnforceAreNotBound) {
  const std::string audit_only =
      "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: watch}\nspec:\n"
      "  selector: {namespace: shop}\n  mode: audit\n"
      "  process:\n    allow: [{path: /usr/bin/true}]\n";
  const std::string host_only =
      "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: host}\nspec:\n"
      "  selector: {processes: [/usr/sbin/sshd]}\n  mode: enforce\n"
      "  process:\n    allow: [{path: /usr/sbin/sshd}]\n";
  auto set = compile(audit_only + "---\n" + host_only);
  for (const auto& policy : set->workload_policies()) EXPECT_FALSE(enforceable(*policy));
  EXPECT_TRUE(bind_workloads(*set, {container("web", 60)}, {{"/", 1}}).empty());
}

TEST(WorkloadBinder, AnExecLockdownInEnforceModeIsEnforceable) {
  auto set = compile(
      "apiVersion: palisade.dev/v1\nkind: WorkloadPolicy\nmetadata: {name: locked}\nspec:\n"
      "  selector: {cgroups: [/locked]}\n  mode: enforce\n"
      "  process:\n    allow: [{path: /usr/bin/true}]\n");
  ASSERT_EQ(set->workload_policies().size(), 1u);
  EXPECT_TRUE(enforceable(*set->workload_policies()[0]));
  const auto bound = bind_workloads(*set, {}, {{"/locked", 70}, {"/locked/child", 71}});
  ASSERT_EQ(bound.size(), 1u) << "a glob without * names one cgroup";
  EXPECT_EQ(bound[0].cgroup_id, 70u);
}

}  // namespace
}  // namespace palisade::agent

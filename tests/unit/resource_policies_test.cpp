// Policies from PalisadePolicy resources: what the agent hands the engine, and the namespace
// confinement of namespaced resources.
#include "kubernetes/resource_policies.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "palisade/k8s/policy_resources.h"

namespace palisade::agent {
namespace {

using nlohmann::json;

json to_json(const YAML::Node& node) {
  if (node.IsMap()) {
    json out = json::object();
    for (const auto& kv : node) out[kv.first.as<std::string>()] = to_json(kv.second);
    return out;
  }
  if (node.IsSequence()) {
    json out = json::array();
    for (const auto& item : node) out.push_back(to_json(item));
    return out;
  }
  return node.IsNull() ? json() : json(node.as<std::string>());
}

k8s::PolicyResource resource(const std::string& ns, const json& documents) {
  return k8s::policy_resource_from_json(
      {{"apiVersion", "palisade.dev/v1"},
       {"kind", ns.empty() ? "ClusterPalisadePolicy" : "PalisadePolicy"},
       {"metadata", {{"name", "p"}, {"namespace", ns}, {"uid", "u"}, {"generation", 1}}},
       {"spec", {{"documents", documents}}}});
}

TEST(ResourcePolicies, TheShippedExampleCompiles) {
  const YAML::Node example =
      YAML::LoadFile(std::string(PALISADE_SOURCE_DIR) + "/k8s/examples/shop-web-policy.yaml");
  std::vector<std::string> errors;
  auto converted =
      policies_from_resources({k8s::policy_resource_from_json(to_json(example))}, errors);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0], "");
  ASSERT_FALSE(converted.sources.empty());
  EXPECT_EQ(converted.sources[0].name, "PalisadePolicy/shop/shop-web#documents[0]");
  auto sources = policies::default_rule_sources();
  sources.insert(sources.end(), converted.sources.begin(), converted.sources.end());
  std::vector<policies::Diagnostic> diagnostics;
  EXPECT_TRUE(policies::PolicySet::compile(sources, diagnostics));
  for (const auto& d : diagnostics) ADD_FAILURE() << d.to_string();
}

TEST(ResourcePolicies, NamespacedResourcesGovernOnlyTheirNamespace) {
  const json rule = {{"kind", "DetectionRule"},
                     {"metadata", {{"name", "r"}}},
                     {"spec", {{"condition", "event.kind = exec"}, {"output", "x"}}}};
  const json own = {{"kind", "WorkloadPolicy"},
                    {"metadata", {{"name", "w"}}},
                    {"spec", {{"selector", json::object()}, {"files", {{"readOnly", {"/etc"}}}}}}};
  json other = own;
  other["spec"]["selector"]["namespace"] = "billing";
  std::vector<std::string> errors;
  auto converted = policies_from_resources({resource("shop", {rule, own, other})}, errors);
  ASSERT_EQ(converted.sources.size(), 2U) << "the WorkloadPolicy naming billing is refused";
  EXPECT_NE(errors[0].find("documents[2]: a PalisadePolicy in namespace shop may select only its "
                           "own namespace"),
            std::string::npos)
      << errors[0];
  const json rule_doc = json::parse(converted.sources[0].text);
  EXPECT_EQ(rule_doc["spec"]["condition"], "event.kind = exec") << "the condition is untouched";
  EXPECT_EQ(rule_doc["spec"]["namespaces"], json::array({"shop"}));
  const json workload_doc = json::parse(converted.sources[1].text);
  EXPECT_EQ(workload_doc["spec"]["selector"]["namespace"], "shop");
  EXPECT_EQ(workload_doc["apiVersion"], "palisade.dev/v1");

  // Cluster-wide resources are taken as written.
  auto cluster = policies_from_resources({resource("", json::array({rule}))}, errors);
  ASSERT_EQ(cluster.sources.size(), 1U);
  EXPECT_FALSE(json::parse(cluster.sources[0].text)["spec"].contains("namespaces"));
  EXPECT_EQ(cluster.sources[0].name, "ClusterPalisadePolicy/p#documents[0]");
}

}  // namespace
}  // namespace palisade::agent

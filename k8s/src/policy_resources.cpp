// A PalisadePolicy or ClusterPalisadePolicy object from the API, checked document by document:
// apart from the watcher, so that the parser of what the API server sends is tested (and fuzzed)
// alone.
#include "palisade/k8s/policy_resources.h"

#include <set>

namespace palisade::k8s {

namespace {

using nlohmann::json;

const std::set<std::string> kDocumentKinds = {"DetectionRule", "WorkloadPolicy", "List", "Macro"};

}  // namespace

json PolicyDocument::to_document() const {
  return {
      {"apiVersion", kPolicyApiVersion}, {"kind", kind}, {"metadata", metadata}, {"spec", spec}};
}

PolicyResource policy_resource_from_json(const json& object) {
  PolicyResource r;
  const json meta = object.value("metadata", json::object());
  r.kind = object.value("kind", "");
  r.namespace_name = meta.value("namespace", "");
  r.name = meta.value("name", "");
  r.uid = meta.value("uid", "");
  r.generation = meta.value("generation", std::int64_t{0});
  r.resource_version = meta.value("resourceVersion", "");
  const json spec = object.value("spec", json::object());
  const json docs = spec.value("documents", json::array());
  if (!docs.is_array()) {
    r.errors.push_back("spec.documents: must be a list");
    return r;
  }
  // The CRD schema already checks these; a server without validation (or an older CRD) may not.
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const std::string where = "spec.documents[" + std::to_string(i) + "]";
    const json& d = docs[i];
    if (!d.is_object()) {
      r.errors.push_back(where + ": must be an object");
      continue;
    }
    PolicyDocument doc;
    doc.kind = d.value("kind", "");
    doc.metadata = d.value("metadata", json::object());
    doc.spec = d.value("spec", json::object());
    if (kDocumentKinds.count(doc.kind) == 0) {
      r.errors.push_back(where + ".kind: \"" + doc.kind +
                         "\" is not one of DetectionRule, WorkloadPolicy, List, Macro");
      continue;
    }
    if (!doc.metadata.is_object() || doc.metadata.value("name", "").empty()) {
      r.errors.push_back(where + ".metadata.name: required");
      continue;
    }
    r.documents.push_back(std::move(doc));
  }
  return r;
}

}  // namespace palisade::k8s

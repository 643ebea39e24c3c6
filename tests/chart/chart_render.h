// Renders charts/palisade with charts/renderer (Helm's template engine and function library) and
// hands the manifests to the tests as JSON.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace palisade::testing::chart {

using nlohmann::json;

struct Rendered {
  int exit_code = 0;
  std::string text;    // the YAML stream (or NOTES.txt with --notes)
  std::string errors;  // what the renderer printed on stderr
  std::vector<json> manifests;
};

// `values_yaml` is written to a values file given with -f ("" = the chart's defaults only).
Rendered render(const std::string& values_yaml, const std::vector<std::string>& flags = {});

// YAML as JSON, plain scalars typed as YAML 1.2's core schema types them (null, bool, int,
// float), quoted ones kept as strings.
json yaml_to_json(const std::string& yaml_text);
std::vector<json> yaml_documents(const std::string& yaml_text);

// The manifest of this kind (and name when given); a null json when there is none.
json manifest(const std::vector<json>& manifests, const std::string& kind,
              const std::string& name = "");
// The agent container of the DaemonSet.
json agent_container(const std::vector<json>& manifests);

std::filesystem::path source_dir();

}  // namespace palisade::testing::chart

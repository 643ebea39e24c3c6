// libFuzzer target: arbitrary bytes as the objects of a Kubernetes API watch stream (one JSON
// object per line, as the reflector receives them): pods and the palisade policy resources.
// The API server is trusted less than the agent: nothing in them may crash, hang or leak it.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>

#include "json_lines.h"
#include "palisade/k8s/pods.h"
#include "palisade/k8s/policy_resources.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for_each_json_line(data, size, [](const nlohmann::json& line) {
    // A watch event wraps the object; a list item is the object itself.
    const nlohmann::json& object = line.contains("object") ? line["object"] : line;
    try {
      (void)palisade::k8s::pod_info_from_json(object);
      (void)palisade::k8s::policy_resource_from_json(object);
    } catch (const std::exception&) {
    }
  });
  return 0;
}

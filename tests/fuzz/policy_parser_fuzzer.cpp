// libFuzzer target: arbitrary bytes as a policy document. Compiling must never crash, hang or
// leak, whatever the input; errors are fine.
#include <cstddef>
#include <cstdint>
#include <string>

#include "palisade/policies/policy_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::policies;
  std::vector<Diagnostic> errors;
  // A small set of definitions to refer to: compiling the whole default set every run would cut
  // the fuzzer's throughput by two orders of magnitude.
  static const PolicySource kDefinitions{"defs.yaml", R"(apiVersion: palisade.dev/v1
kind: List
metadata: {name: shells}
spec: {items: [sh, bash]}
---
apiVersion: palisade.dev/v1
kind: Macro
metadata: {name: is_exec}
spec: {condition: event.kind = exec}
)"};
  std::vector<PolicySource> sources{kDefinitions};
  sources.push_back(
      PolicySource{"fuzz.yaml", std::string(reinterpret_cast<const char*>(data), size)});
  auto set = PolicySet::compile(sources, errors);
  if (set) set->run_embedded_tests();
  return 0;
}

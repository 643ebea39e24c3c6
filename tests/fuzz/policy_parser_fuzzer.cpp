// libFuzzer target: arbitrary bytes as a policy document. Compiling must never crash, hang or
// leak, whatever the input; errors are fine.
#include <cstddef>
#include <cstdint>
#include <string>

#include "palisade/policies/policy_set.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::policies;
  std::vector<Diagnostic> errors;
  std::vector<PolicySource> sources = default_rule_sources();  // lists and macros to refer to
  sources.push_back(PolicySource{"fuzz.yaml", std::string(reinterpret_cast<const char*>(data), size)});
  auto set = PolicySet::compile(sources, errors);
  if (set) set->run_embedded_tests();
  return 0;
}

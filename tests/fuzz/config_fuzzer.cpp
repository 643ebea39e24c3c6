// libFuzzer target: arbitrary bytes as the agent's configuration file (also what a SIGHUP
// reload reads). A bad file is a ConfigurationError naming file, line and field; nothing else
// may escape, crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <string>

#include "palisade/agent/config.h"
#include "palisade/base/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace palisade::agent;
  static const AgentConfig defaults = default_config();
  try {
    (void)apply_config(defaults, std::string(reinterpret_cast<const char*>(data), size),
                       "fuzz.yaml");
  } catch (const palisade::ConfigurationError&) {
  }
  return 0;
}

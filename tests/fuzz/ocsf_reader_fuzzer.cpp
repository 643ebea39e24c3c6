// libFuzzer target: arbitrary bytes as the OCSF JSON lines that `palisade policy test --events`
// and the golden replays read back into events. Reading must never crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "json_lines.h"
#include "palisade/ocsf/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for_each_json_line(data, size, [](const nlohmann::json& line) {
    try {
      (void)palisade::ocsf::event_from_ocsf(line);
    } catch (const std::runtime_error&) {  // documented: a malformed palisade event
    }
  });
  return 0;
}

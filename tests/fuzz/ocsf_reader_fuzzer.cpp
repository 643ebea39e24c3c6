// libFuzzer target: arbitrary bytes as the OCSF JSON lines that `palisade policy test --events`
// and the golden replays read back into events. Reading must never crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>

#include "palisade/ocsf/reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    const nlohmann::json line = nlohmann::json::parse(text.substr(0, end), nullptr, false);
    text.remove_prefix(std::min(end + 1, text.size()));
    if (line.is_discarded()) continue;
    try {
      (void)palisade::ocsf::event_from_ocsf(line);
    } catch (const std::runtime_error&) {  // documented: a malformed palisade event
    }
  }
  return 0;
}

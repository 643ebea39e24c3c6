// What the fuzzers of line-delimited JSON share: the input split at newlines, each line that
// parses handed on (a line that does not is skipped, as the readers skip it).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

template <typename Fn>
void for_each_json_line(const uint8_t* data, size_t size, Fn&& fn) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    const nlohmann::json line = nlohmann::json::parse(text.substr(0, end), nullptr, false);
    text.remove_prefix(std::min(end + 1, text.size()));
    if (!line.is_discarded()) fn(line);
  }
}

// A minimal append-only JSON writer. The OCSF stream is the agent's hottest output path; building
// an nlohmann::json DOM per event costs several allocations per field, so events are written
// straight into a reused buffer instead (tests parse the output back with nlohmann::json).
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>

namespace palisade::agent {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view name);
  JsonWriter& value(std::string_view text);
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(bool flag);
  template <std::integral T>
  JsonWriter& value(T number) {
    if constexpr (std::is_signed_v<T>) {
      return signed_value(static_cast<int64_t>(number));
    } else {
      return unsigned_value(static_cast<uint64_t>(number));
    }
  }

  template <typename T>
  JsonWriter& field(std::string_view name, const T& v) {
    key(name);
    return value(v);
  }

 private:
  JsonWriter& signed_value(int64_t number);
  JsonWriter& unsigned_value(uint64_t number);
  JsonWriter& open(char c);
  JsonWriter& close(char c);
  void separate();

  std::string& out_;
  bool need_comma_ = false;
};

void append_json_string(std::string& out, std::string_view text);

}  // namespace palisade::agent

// A minimal append-only JSON writer. The OCSF stream is the agent's hottest output path; building
// an nlohmann::json DOM per event costs several allocations per field, so events are written
// straight into a reused buffer through a raw cursor instead (tests parse the output back with
// nlohmann::json).
#pragma once

#include <concepts>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace palisade::ocsf {

class JsonWriter {
 public:
  // Appends to `out`; the text is complete once the writer is destroyed.
  explicit JsonWriter(std::string& out);
  ~JsonWriter();
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }
  JsonWriter& key(std::string_view name) {
    // Keys are the schema's own identifiers: nothing to escape.
    ensure(name.size() + 4);
    separate();
    *cur_++ = '"';
    std::memcpy(cur_, name.data(), name.size());
    cur_ += name.size();
    *cur_++ = '"';
    *cur_++ = ':';
    need_comma_ = false;
    return *this;
  }
  // A key that comes from data (label names): escaped like a value.
  JsonWriter& data_key(std::string_view name) {
    ensure(2);
    separate();
    put_string(name);
    ensure(1);
    *cur_++ = ':';
    need_comma_ = false;
    return *this;
  }
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
  // Inserts already-serialized JSON (a value) verbatim.
  JsonWriter& raw(std::string_view json);

  template <typename T>
  JsonWriter& field(std::string_view name, const T& v) {
    key(name);
    return value(v);
  }

 private:
  JsonWriter& signed_value(int64_t number);
  JsonWriter& unsigned_value(uint64_t number);
  JsonWriter& open(char c) {
    ensure(2);
    separate();
    *cur_++ = c;
    need_comma_ = false;
    return *this;
  }
  JsonWriter& close(char c) {
    ensure(1);
    *cur_++ = c;
    need_comma_ = true;
    return *this;
  }
  void separate() {
    if (need_comma_) *cur_++ = ',';
    need_comma_ = true;
  }
  void ensure(size_t bytes) {
    if (static_cast<size_t>(end_ - cur_) < bytes) grow(bytes);
  }
  void grow(size_t bytes);
  void put_string(std::string_view text);

  std::string& out_;
  char* cur_ = nullptr;
  char* end_ = nullptr;
  bool need_comma_ = false;
};

void append_json_string(std::string& out, std::string_view text);

}  // namespace palisade::ocsf

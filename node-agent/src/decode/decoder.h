// Turns raw sensor records into Events. One decoder per event family, each in its own file,
// registered in a table indexed by kind (no central switch over every event type).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "palisade/agent/source.h"
#include "palisade/model/event.h"
#include "sensor/sensor_abi.h"

namespace palisade::agent {

// The record's strings, already bounds-checked against the record length.
using RecordStrings = std::array<std::string_view, PAL_MAX_STRINGS>;

using DecodeFn = void (*)(const pal_record& record, const RecordStrings& strings, Event& out);

class DecoderTable {
 public:
  DecoderTable();  // registers every family
  void add(uint16_t kind, DecodeFn fn);

  // Decodes into `out` (reused between calls). Returns an error description for malformed input.
  std::optional<std::string> decode(RecordView bytes, Event& out) const;

 private:
  std::array<DecodeFn, PAL_KIND_LIMIT> table_{};
};

static_assert(PAL_KIND_LIMIT <= kEventKindLimit, "the sensor ABI and the event model disagree");

void register_process_decoders(DecoderTable& table);
void register_file_decoders(DecoderTable& table);
void register_network_decoders(DecoderTable& table);
void register_privilege_decoders(DecoderTable& table);
void register_enforce_decoders(DecoderTable& table);

// Splits a NUL-separated argv block.
void split_argv(std::string_view block, std::vector<std::string>& out);
// Lexically normalizes an absolute path: collapses "//", "." and "..".
std::string normalize_path(std::string_view path);

}  // namespace palisade::agent

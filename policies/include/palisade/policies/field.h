// The fields a policy condition can test, declared once: name, type, meaning, how to read it from
// an event and how to set it (policy test cases build events from field assignments). The
// expression compiler, `palisade policy fields` and docs/policies.md all come from this table.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "palisade/model/event.h"

namespace palisade::policies {

enum class FieldType : uint8_t { kString, kInt };

// A field's value for one event; `present` is false when the event does not carry the field.
struct FieldValue {
  bool present = false;
  std::string_view text;
  int64_t number = 0;
};

struct FieldDef {
  std::string_view name;
  FieldType type;
  std::string_view description;
  FieldValue (*read)(const Event& event);
  // Multi-valued fields (every ancestor's executable): calls `visit` per value until it returns
  // true; null for single-valued fields.
  bool (*any_of)(const Event& event, const std::function<bool(const FieldValue&)>& visit);
  // Sets the field on a test event; false when the text is not a valid value.
  bool (*assign)(Event& event, std::string_view text);
};

std::span<const FieldDef> fields();
const FieldDef* find_field(std::string_view name);

// docs/policy-fields.md, rendered from the table (a unit test keeps the file current).
std::string render_fields_markdown();

}  // namespace palisade::policies

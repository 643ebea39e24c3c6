#include "palisade/ocsf/reader.h"

#include "palisade/ocsf/fields.h"
#include "palisade/ocsf/mapping.h"

namespace palisade::ocsf {
namespace {

using nlohmann::json;

EventKind kind_from(const std::string& name) {
  for (const auto& info : event_kinds()) {
    if (info.name == name) return info.kind;
  }
  throw std::runtime_error("unknown event kind '" + name + "'");
}

std::optional<Event> read_event(const json& j);

}  // namespace

std::optional<Event> event_from_ocsf(const json& j) {
  try {
    return read_event(j);
  } catch (const json::exception& e) {
    // A field of the wrong type (a string where a number belongs): malformed, as documented.
    throw std::runtime_error(std::string("malformed palisade event: ") + e.what());
  }
}

namespace {

std::optional<Event> read_event(const json& j) {
  if (!j.is_object()) return std::nullopt;
  const int class_uid = j.value("class_uid", 0);
  if (class_uid == 0 || class_uid == 2004) return std::nullopt;
  const json* event_name = find_field(j, "unmapped.palisade.event");
  if (event_name == nullptr) return std::nullopt;
  Event e;
  e.kind = kind_from(event_name->is_string() ? event_name->get<std::string>() : "");
  // palisade's own record of a kind has the class the mapping declares for it; anything else
  // is not one of ours (or was edited) and is not replayed as if it were.
  const KindMapping* mapping = mapping_of(e.kind);
  if (mapping == nullptr || mapping->ocsf_class->class_uid != class_uid) return std::nullopt;
  // Every attribute declared for the kind that can be read back, in the declaration's order.
  for (const FieldDeclaration& field : field_declarations()) {
    if (field.read == nullptr || !field.kinds.has(e.kind)) continue;
    const json* value = find_field(j, field.path);
    if (value != nullptr && !value->is_null()) field.read(j, *value, e);
  }
  if (class_of(e.kind) == EventClass::kVirtualMachine && !e.vm) e.vm = std::make_shared<VmView>();
  return e;
}

}  // namespace

}  // namespace palisade::ocsf

// The attributes of palisade's OCSF event records, declared once: where in the record, for which
// kinds, made from what, and how the reader puts the value back into an Event. The formatter
// writes them (by hand: it is the hot path); tests/unit/ocsf_fields_test.cpp checks over the
// golden output that every attribute it writes is declared for the record's kind and that every
// attribute declared as always written is there. The reader (event_from_ocsf) is driven by the
// table, and docs/events.md lists it.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "palisade/model/event.h"

namespace palisade::ocsf {

class KindSet {
 public:
  constexpr KindSet() = default;
  constexpr KindSet(std::initializer_list<EventKind> kinds) {
    for (EventKind k : kinds) add(k);
  }
  static constexpr KindSet of_class(EventClass c) {
    KindSet set;
    for (size_t k = 0; k < kEventKindLimit; ++k) {
      if (k != 0 && class_of(static_cast<EventKind>(k)) == c) set.add(static_cast<EventKind>(k));
    }
    return set;
  }
  constexpr KindSet& add(EventKind kind) {
    const auto k = static_cast<size_t>(kind);
    bits_[k / 64] |= uint64_t{1} << (k % 64);
    return *this;
  }
  constexpr bool has(EventKind kind) const {
    const auto k = static_cast<size_t>(kind);
    return k < kEventKindLimit && (bits_[k / 64] & (uint64_t{1} << (k % 64))) != 0;
  }
  constexpr KindSet operator|(const KindSet& other) const {
    KindSet out;
    for (size_t i = 0; i < bits_.size(); ++i) out.bits_[i] = bits_[i] | other.bits_[i];
    return out;
  }
  constexpr KindSet operator-(const KindSet& other) const {
    KindSet out;
    for (size_t i = 0; i < bits_.size(); ++i) out.bits_[i] = bits_[i] & ~other.bits_[i];
    return out;
  }
  constexpr bool operator==(const KindSet&) const = default;

 private:
  std::array<uint64_t, (kEventKindLimit + 63) / 64> bits_{};
};

// Puts the attribute's value back into `event`; `record` is the whole record, for the few
// attributes read together with another (a container with its Kubernetes identity).
using FieldReader = void (*)(const nlohmann::json& record, const nlohmann::json& value,
                             Event& event);

struct FieldDeclaration {
  std::string_view path;  // dotted; an object covers its members ("actor.process")
  KindSet kinds;
  std::string_view source;     // what it is made from (docs/events.md)
  bool always = true;          // false: only when there is something to say
  FieldReader read = nullptr;  // null: written for people and SIEMs, not replayed
};

// In the order the reader applies them (a view before the fields that complete it).
std::span<const FieldDeclaration> field_declarations();

// The kinds of the host sensor and of the enforcement programs (every class but VMs), and of
// the hypervisor monitor.
KindSet host_kinds();
KindSet vm_kinds();

// For docs/events.md: "every host event", "every VM event", a class or the kinds' names.
std::string describe_kinds(const KindSet& kinds);

// The value at a dotted path, or null when a member on the way is missing.
const nlohmann::json* find_field(const nlohmann::json& record, std::string_view path);

}  // namespace palisade::ocsf

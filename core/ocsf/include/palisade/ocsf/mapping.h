// The OCSF 1.3.0 mapping, declared once. For each event kind: its class and activity. For each
// OCSF profile palisade uses: the attributes it adds and when a record carries them. The
// formatter writes class and activity from the first table and derives metadata.profiles from
// the profile attributes it actually wrote; the reader checks a record's class against the first
// table; docs/events.md is generated from both (and from the attributes in fields.h);
// tests/unit/ocsf_mapping_test.cpp checks both against facts generated from the published schema
// (scripts/gen-ocsf-facts.py).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "palisade/model/event.h"

namespace palisade::ocsf {

struct OcsfClass {
  int class_uid = 0;
  std::string_view class_name;
  int category_uid = 0;
  std::string_view category_name;
};

struct KindMapping {
  EventKind kind = EventKind::kUnknown;
  const OcsfClass* ocsf_class = nullptr;
  int activity_id = 0;
  std::string_view activity_name;
  std::string_view note;  // when the activity depends on the outcome (for docs/events.md)
};

// Every kind the formatter writes (all but kUnknown).
std::span<const KindMapping> kind_mappings();
// Null for kUnknown.
const KindMapping* mapping_of(EventKind kind);

// An event's class and activity: the kind's mapping, with the one activity that depends on the
// outcome (a failed or refused connect) applied. Unknown kinds are Base Events.
struct Classification {
  int class_uid = 0;
  std::string_view class_name;
  int category_uid = 0;
  std::string_view category_name;
  int activity_id = 0;
  std::string_view activity_name;
};

Classification classify(const Event& event);

enum class Profile : uint8_t { kHost, kLinuxUsers, kContainer, kSecurityControl };

struct ProfileDeclaration {
  Profile profile;
  std::string_view name;        // as metadata.profiles names it
  std::string_view object;      // where its attributes are: "" = the record, "process" = any
                                // process object (actor.process, process, parent_process)
  std::string_view attributes;  // comma-separated OCSF attribute names
  std::string_view when;        // when palisade writes them (for docs/events.md)
};

std::span<const ProfileDeclaration> profile_declarations();

// The profiles a record used, as the formatter wrote its attributes.
class ProfileSet {
 public:
  void add(Profile profile) { bits_ |= 1U << static_cast<unsigned>(profile); }
  bool has(Profile profile) const { return (bits_ & (1U << static_cast<unsigned>(profile))) != 0; }

 private:
  uint32_t bits_ = 0;
};

}  // namespace palisade::ocsf

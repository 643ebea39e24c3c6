// Maps events to OCSF 1.3.0 JSON (one object per line), as core/ocsf/include/palisade/ocsf/
// mapping.h declares it; docs/events.md documents the mapping.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "palisade/model/event.h"
#include "palisade/model/finding.h"
#include "palisade/ocsf/mapping.h"  // classify()

namespace palisade::ocsf {

inline constexpr std::string_view kVersion = "1.3.0";

struct HostInfo {
  std::string hostname;
  std::string machine_id;
  std::string kernel_release;
  int64_t boot_wall_offset_ns = 0;  // realtime - boottime: converts process start times
  std::string run_id;               // distinguishes this agent run in event uids
  static HostInfo detect();
};

class JsonWriter;

class Formatter {
 public:
  explicit Formatter(HostInfo host);

  // Appends the event as one JSON object (no newline) to `out`.
  void format(const Event& event, std::string& out);

  // Appends a Base Event (class 0) carrying `details_json` (an object) under unmapped.palisade.
  void format_agent_event(std::string_view message, uint64_t wall_ns, std::string_view details_json,
                          std::string& out);

  // Appends an OCSF Detection Finding (class 2004) for a rule that matched `trigger`, linked to
  // the triggering event (its uid) and carrying it whole under unmapped.palisade.trigger.
  void format_finding(const FindingView& finding, const Event& trigger,
                      std::string_view trigger_json, std::string_view policy_digest,
                      std::string& out);

  const HostInfo& host() const { return host_; }
  // The uid an event's record carries in metadata.uid (unique per agent run): exporters send
  // it as their deduplication id.
  std::string event_uid(const Event& event) const;

 private:
  std::string_view user_name(uint32_t uid);
  void format_vm(const Event& event, std::string& out);
  // A record's body (everything after metadata) is written first, into body_, so that
  // metadata.profiles, which precedes it, lists the profiles of what the body carries. The
  // body writer is called as write_body(JsonWriter&, ObjectWriter&, ProfileSet& used); the
  // template is defined in the formatter's internal record_parts.h.
  template <typename WriteBody>
  ProfileSet render_body(WriteBody&& write_body);
  // Appends the rendered body's members to the record `w` has open, and closes it.
  void append_body(JsonWriter& w) const;

  HostInfo host_;
  std::unordered_map<uint32_t, std::string> user_names_;  // bounded: cleared at kMaxUserNames
  std::string body_;  // reused: an event's members after metadata, written before it
};

}  // namespace palisade::ocsf

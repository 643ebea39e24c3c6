// A finding as the outputs see it: which rule matched, how severe it is and what it says. The
// policy engine makes these (policies::Finding::view()); the OCSF formatter renders them without
// knowing anything of rules or policy sets.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace palisade {

struct FindingView {
  std::string_view rule;         // the rule's name: also the analytic's uid
  std::string_view title;        // what the rule detects (its description, else its name)
  std::string_view rule_source;  // the document the rule came from
  int severity_id = 0;           // OCSF severity_id: 1 informational ... 5 critical
  std::string_view severity;
  std::span<const std::string> tags;  // ATT&CK technique ids (T1234) and free tags
  std::string_view response;          // alert, kill, isolate, ...
  std::string_view message;           // the rendered output template
  uint32_t count = 1;                 // events counted when a threshold fired
  std::string_view verdict;           // workload-policy decisions; empty for detection rules
};

}  // namespace palisade

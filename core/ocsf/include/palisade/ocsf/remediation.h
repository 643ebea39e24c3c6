// OCSF 1.3 Remediation Activity records: what a response (kill, quarantine, isolate, restore, a
// VM action) did, to what, and who asked. The node agent, `palisade respond` and `palisade hv`
// all write them through these two functions, so the class numbers live here only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace palisade::ocsf {

enum class RemediationClass : int {
  kGeneric = 7001,  // a VM response (palisade hv): OCSF has no VM remediation class
  kFile = 7002,
  kProcess = 7003,
  kNetwork = 7004,
};

enum class RemediationActivity : int { kIsolate = 1, kEvict = 2, kRestore = 3, kOther = 99 };

// Who asked for an action, as the audit record says: the real user and login user (which
// survives sudo) of this process, its pid, the tool (or rule) and why.
nlohmann::json requester(const std::string& tool, const std::string& reason);

// The record, without the object acted on (the caller adds file, process or device).
nlohmann::json remediation_event(RemediationClass cls, RemediationActivity activity, bool ok,
                                 const std::string& detail, const nlohmann::json& requested_by);

}  // namespace palisade::ocsf

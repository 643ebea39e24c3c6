#include "palisade/policies/workload_policy.h"

#include <fnmatch.h>
#include <sys/socket.h>

#include <algorithm>

namespace palisade::policies {
namespace {

bool glob(const std::string& pattern, const std::string& text) {
  return fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

bool prefix_matches(const std::array<uint8_t, 16>& want, const std::array<uint8_t, 16>& have,
                    uint8_t prefix) {
  const size_t bytes = prefix / 8;
  if (!std::equal(want.begin(), want.begin() + static_cast<long>(bytes), have.begin()))
    return false;
  const unsigned bits = prefix % 8;
  if (bits == 0) return true;
  const auto mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (want[bytes] & mask) == (have[bytes] & mask);
}

}  // namespace

bool NetworkRule::matches(const Event& e) const {
  if (protocol != 0 && protocol != e.protocol) return false;
  if (e.remote.port < port_low || e.remote.port > port_high) return false;
  if (family == 0) return true;
  if (family != e.family) return false;
  return prefix_matches(addr, e.remote.addr, prefix);
}

bool selects_process(const WorkloadPolicy& policy, const Event& event) {
  if (policy.processes.empty()) return true;
  auto matches = [&](const std::string& exe) {
    return std::any_of(policy.processes.begin(), policy.processes.end(),
                       [&](const std::string& g) { return glob(g, exe); });
  };
  if (event.process && matches(event.process->exe)) return true;
  return std::any_of(event.lineage.begin(), event.lineage.end(),
                     [&](const agent::ProcessRef& a) { return matches(a->exe); });
}

std::string process_violation(const WorkloadPolicy& policy, const Event& event) {
  const std::string exe = event.process ? event.process->exe : std::string();
  const std::string parent = event.parent ? event.parent->exe : std::string();
  for (const auto& entry : policy.process_allow) {
    if (!glob(entry.path, exe)) continue;
    if (!entry.parents.empty() &&
        std::none_of(entry.parents.begin(), entry.parents.end(),
                     [&](const std::string& p) { return glob(p, parent); })) {
      continue;
    }
    if (!entry.users.empty() &&
        std::find(entry.users.begin(), entry.users.end(), event.task.uid) == entry.users.end()) {
      continue;
    }
    return {};
  }
  return "executable " + (exe.empty() ? std::string("<unknown>") : exe) + " (parent " +
         (parent.empty() ? std::string("<unknown>") : parent) + ", uid " +
         std::to_string(event.task.uid) + ") matches no entry of the process allowlist";
}

std::string egress_violation(const WorkloadPolicy& policy, const Event& event) {
  const std::string peer = event.remote.to_string(event.family) + ":" +
                           std::to_string(event.remote.port) +
                           (event.protocol == 17 ? "/udp" : "/tcp");
  for (const auto& rule : policy.egress_deny) {
    if (rule.matches(event)) return "connection to " + peer + " matches deny rule " + rule.text;
  }
  if (policy.egress_default_allow) return {};
  for (const auto& rule : policy.egress_allow) {
    if (rule.matches(event)) return {};
  }
  return "connection to " + peer + " matches no egress allow rule (default deny)";
}

}  // namespace palisade::policies

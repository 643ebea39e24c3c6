// WorkloadPolicy: what a selected workload may do. This part covers application lockdown (an
// executable allowlist) and egress microsegmentation (CIDR, ports, protocol); each violation is a
// decision with its reason, reported as "would block" in audit mode and "block" in enforce mode.
// Carrying the block out in the kernel is the enforcement layer's job (issue 5).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "palisade/policies/field.h"

namespace palisade::policies {

enum class Mode : uint8_t { kAudit, kEnforce };

struct ProcessAllowEntry {
  std::string path;                  // glob
  std::vector<std::string> parents;  // globs on the parent's executable; empty = any
  std::vector<uint32_t> users;       // real uids; empty = any
  std::string sha256;                // recorded for enforcement (issue 5); not checked here
};

struct NetworkRule {
  uint16_t family = 0;  // 0 = any address
  std::array<uint8_t, 16> addr{};
  uint8_t prefix = 0;
  uint16_t port_low = 0;
  uint16_t port_high = 65535;
  uint8_t protocol = 0;  // 0 = any, 6 = tcp, 17 = udp
  std::string text;      // as written, for reasons
  bool matches(const Event& event) const;
};

struct WorkloadPolicy {
  std::string name;
  std::string source;
  int line = 0;
  std::vector<std::string> hosts;  // globs on the host name; empty = every host
  // Host workloads: the policy covers processes whose executable, or an ancestor's, matches one
  // of these globs (a daemon and everything it starts); empty = every process.
  std::vector<std::string> processes;
  bool kubernetes_selector = false;  // namespace/pod/container selectors: need issue 4's identity
  bool has_process = false;
  Mode process_mode = Mode::kAudit;
  std::vector<ProcessAllowEntry> process_allow;
  bool has_egress = false;
  Mode egress_mode = Mode::kAudit;
  bool egress_default_allow = false;
  std::vector<NetworkRule> egress_allow;
  std::vector<NetworkRule> egress_deny;
};

// Whether the event's process belongs to the policy's workload (the processes selector).
bool selects_process(const WorkloadPolicy& policy, const Event& event);

// Why an exec or a connection was (or would be) blocked; empty when allowed.
std::string process_violation(const WorkloadPolicy& policy, const Event& event);
std::string egress_violation(const WorkloadPolicy& policy, const Event& event);

}  // namespace palisade::policies

// Policies in the kernel's terms: the reserved workload slots, the flags of a workload entry and
// the compiled network rules of a slot (enforce_abi.h), and the built-in policies the agent
// enforces without a document (the unidentified-workload posture, the canary).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "enforce/enforce_abi.h"
#include "palisade/policies/workload_policy.h"

namespace palisade::agent {

inline constexpr uint32_t kUnboundSlot = 0;  // isolated cgroups no policy covers: no rules at all
inline constexpr uint32_t kCanarySlot = PAL_MAX_WORKLOAD_SLOTS - 1;  // deny everything
inline constexpr const char* kCanaryPolicy = "enforcement-canary";
inline constexpr uint32_t kPostureSlot = PAL_MAX_WORKLOAD_SLOTS - 2;  // unidentified workloads
inline constexpr const char* kPosturePolicy = "unidentified-workload";

// The unidentified posture as a policy (for the fanotify decider) and as kernel flags.
policies::WorkloadPolicy make_posture_policy(const std::string& posture);
uint32_t posture_flags(const std::string& posture, bool kernel_exec);

// The canary's workload: no executable allowed, no connection allowed, enforced.
policies::WorkloadPolicy make_canary_policy();

// The kernel form of one policy's network sections; rules beyond the limit are an error.
struct SlotRules {
  pal_rule_set set{};
  std::vector<std::string> texts;                            // by index, for reports
  std::vector<std::optional<policies::PeerSelector>> peers;  // by index: named by workload
  std::string error;
};
SlotRules compile_rules(const policies::WorkloadPolicy& policy);

// The flags of a workload entry bound to `policy`.
uint32_t workload_flags(const policies::WorkloadPolicy& policy, bool kernel_exec);

// Whether the policy has network rules for the cgroup programs.
bool network_enforceable(const policies::WorkloadPolicy& policy);

// The kernel's dev_t (MKDEV: major << 20 | minor), which the programs read from the superblock.
uint64_t kernel_dev(dev_t dev);

}  // namespace palisade::agent

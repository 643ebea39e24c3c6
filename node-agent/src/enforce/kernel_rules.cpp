#include "enforce/kernel_rules.h"

#include <sys/sysmacros.h>

#include <algorithm>

namespace palisade::agent {
namespace {

void set_rule_addr(pal_net_rule& out, const policies::NetworkRule& rule) {
  out.family = static_cast<__u8>(rule.family);
  out.prefix = rule.prefix;
  std::copy(rule.addr.begin(), rule.addr.end(), out.addr);
}

}  // namespace

policies::WorkloadPolicy make_posture_policy(const std::string& posture) {
  policies::WorkloadPolicy p;
  p.name = kPosturePolicy;
  p.has_process = posture == "deny" || posture == "audit";
  p.process_mode = posture == "deny" ? policies::Mode::kEnforce : policies::Mode::kAudit;
  return p;
}

uint32_t posture_flags(const std::string& posture, bool kernel_exec) {
  uint32_t flags = 0;
  if (posture == "audit") flags = PAL_WL_EGRESS | PAL_WL_INGRESS;
  if (posture == "deny-network" || posture == "deny") {
    flags = PAL_WL_EGRESS | PAL_WL_EGRESS_ENFORCE | PAL_WL_INGRESS | PAL_WL_INGRESS_ENFORCE;
  }
  if (kernel_exec && posture == "audit") flags |= PAL_WL_EXEC;
  if (kernel_exec && posture == "deny") flags |= PAL_WL_EXEC | PAL_WL_EXEC_ENFORCE;
  return flags;
}

policies::WorkloadPolicy make_canary_policy() {
  policies::WorkloadPolicy p;
  p.name = kCanaryPolicy;
  p.has_process = true;
  p.process_mode = policies::Mode::kEnforce;
  p.network_mode = policies::Mode::kEnforce;
  p.egress.present = true;
  return p;
}

SlotRules compile_rules(const policies::WorkloadPolicy& policy) {
  SlotRules out;
  auto add = [&out](const std::vector<policies::NetworkRule>& rules, pal_rule_list list) {
    for (const auto& rule : rules) {
      if (out.set.count >= PAL_MAX_NET_RULES) {
        out.error = "more than " + std::to_string(PAL_MAX_NET_RULES) +
                    " network rules: only the first ones are enforced in the kernel";
        return;
      }
      pal_net_rule& r = out.set.rules[out.set.count++];
      r.list = static_cast<__u8>(list);
      r.protocol = rule.protocol;
      r.port_low = rule.port_low;
      r.port_high = rule.port_high;
      set_rule_addr(r, rule);
      r.peer_set = rule.workload ? 1 : 0;
      out.texts.push_back(rule.text);
      out.peers.push_back(rule.workload);
    }
  };
  add(policy.egress.deny, PAL_LIST_EGRESS_DENY);
  add(policy.egress.allow, PAL_LIST_EGRESS_ALLOW);
  add(policy.ingress.deny, PAL_LIST_INGRESS_DENY);
  add(policy.ingress.allow, PAL_LIST_INGRESS_ALLOW);
  add(policy.management, PAL_LIST_MANAGEMENT);
  return out;
}

uint32_t workload_flags(const policies::WorkloadPolicy& policy, bool kernel_exec) {
  using policies::Mode;
  uint32_t flags = 0;
  auto section = [&](const policies::NetworkSection& s, uint32_t present, uint32_t enforce,
                     uint32_t default_allow) {
    if (!s.present) return;
    flags |= present;
    if (policy.network_mode == Mode::kEnforce) flags |= enforce;
    if (s.default_allow) flags |= default_allow;
  };
  section(policy.egress, PAL_WL_EGRESS, PAL_WL_EGRESS_ENFORCE, PAL_WL_EGRESS_DEFAULT_ALLOW);
  section(policy.ingress, PAL_WL_INGRESS, PAL_WL_INGRESS_ENFORCE, PAL_WL_INGRESS_DEFAULT_ALLOW);
  if (kernel_exec && policy.has_process && policy.process_mode == Mode::kEnforce) {
    flags |= PAL_WL_EXEC | PAL_WL_EXEC_ENFORCE;
  }
  if (policy.files_mode == Mode::kEnforce && !policy.files.read_only.empty()) flags |= PAL_WL_FILES;
  return flags;
}

bool network_enforceable(const policies::WorkloadPolicy& policy) {
  return policy.egress.present || policy.ingress.present || !policy.management.empty();
}

uint64_t kernel_dev(dev_t dev) {
  return (static_cast<uint64_t>(major(dev)) << 20) | minor(dev);
}

}  // namespace palisade::agent

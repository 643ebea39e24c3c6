// Responses carried out on virtual machines through libvirt, from the CLI (`palisade hv respond`)
// or from findings whose rule asks for one. Each is recorded as an OCSF Remediation Activity
// event (7001, or 7004 for network isolation) naming the VM, who asked and why.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "palisade/hypervisor/libvirt.h"
#include "palisade/model/vm_view.h"

namespace palisade::hypervisor {

enum class VmAction : uint8_t {
  kSuspend,  // pause the vCPUs; memory and devices stay as they are
  kResume,
  kSnapshot,  // forensic: a memory dump (running VMs) and an external disk snapshot
  kIsolate,   // every NIC's link down (the guest sees its carrier drop)
  kRelease,   // links up again
  kShutdown,  // ACPI power button; with force, the VM is powered off at once
};

std::string_view action_name(VmAction action);
std::optional<VmAction> parse_action(std::string_view name);

struct ResponseOptions {
  // Where forensic memory dumps go (a directory per snapshot, 0700).
  std::string evidence_directory = "/var/lib/palisade/hv-evidence";
  bool force = false;  // shutdown: power off instead of asking the guest
};

struct ActionOutcome {
  bool ok = false;
  std::string detail;       // what was done, or why not
  nlohmann::json evidence;  // snapshot: name, memory dump and frozen disk images; isolate: NICs
};

// Carries out the action on the domain; never throws for libvirt failures (they are the
// outcome's detail).
ActionOutcome carry_out(Connection& connection, virDomainPtr domain, VmAction action,
                        const ResponseOptions& options);

// The audit event for an action on `vm`: requested_by is agent::requester(...).
nlohmann::json vm_remediation_record(VmAction action, const VmView& vm,
                                     const ActionOutcome& outcome,
                                     const nlohmann::json& requested_by);

}  // namespace palisade::hypervisor

// Guest-disk inspection of one libvirt domain: finds its disks, freezes them when it runs (an
// external disk-only snapshot, merged back afterwards) or reads them as they are, inspects them
// with libguestfs (read-only), compares with the VM's previous inspection and keeps this one.
#pragma once

#include <string>
#include <vector>

#include "palisade/hypervisor/guest_inspection.h"
#include "palisade/hypervisor/libvirt.h"
#include "palisade/hypervisor/monitor.h"
#include "palisade/model/event.h"
#include "palisade/policies/vm_policy.h"

namespace palisade::hypervisor {

struct VmInspection {
  VmView vm;
  // offline (the VM was shut off), snapshot (frozen by an external snapshot), live (read as it
  // runs: consistent enough for configuration files, not for files being written).
  std::string method;
  std::vector<std::string> notes;  // e.g. why a snapshot was not possible
  GuestInventory inventory;
  bool first = false;  // no previous inspection to compare with
  std::vector<GuestChange> changes;
};

// Inspects the domain's disks (no comparison yet). Throws InspectionError or LibvirtError with
// the reason.
VmInspection inspect_vm(Connection& connection, virDomainPtr domain,
                        const policies::VmInspectionSpec& spec, const InspectionSettings& settings);
// Compares with the VM's previous inspection in the store (filling first and changes) and keeps
// this one as the VM's latest.
void record_inspection(VmInspection& inspection, InspectionStore& store);

// A running VM still on an overlay of an interrupted inspection (the process died, the
// connection dropped, the merge failed) is merged back; one line per overlay found, saying what
// was done or why not (a shut-off VM's overlay is left for an operator).
std::vector<std::string> recover_overlays(virDomainPtr domain,
                                          const std::string& overlay_directory);

// The events an inspection yields: one vm_inspection (completed) and one vm_guest_change per
// change. Their seq and times are set when they are emitted.
std::vector<Event> inspection_events(const VmInspection& inspection);
// The event of an inspection that failed.
Event inspection_failure_event(VmView vm, const std::string& reason);

}  // namespace palisade::hypervisor

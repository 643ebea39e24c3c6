// Internal to the formatter: the pieces of OCSF objects that describe virtual machines.
#pragma once

#include "palisade/model/event.h"
#include "palisade/ocsf/formatter.h"
#include "palisade/ocsf/json_writer.h"

namespace palisade::ocsf {

// OCSF device object for the VM.
void write_vm_device(JsonWriter& w, const VmView& vm);
// unmapped.palisade.vm: what OCSF's device has no place for (disks, NIC links, state).
void write_vm_details(JsonWriter& w, const VmView& vm);
// The event's action, detail, rates or before/after, into the current object.
void write_vm_activity(JsonWriter& w, const Event& e);

}  // namespace palisade::ocsf

// OCSF for virtual machine events (palisade hv): the VM is the event's device (type Virtual), the
// hypervisor host that saw it is the observer. VM events are Device Inventory Info (5001,
// Discovery): what a VM is and how its state, behaviour and disks change.
#include "vm_objects.h"

#include "palisade/ocsf/formatter.h"

namespace palisade::ocsf {

void write_vm_device(JsonWriter& w, const VmView& vm) {
  w.begin_object();
  w.field("type_id", 6).field("type", "Virtual");
  w.field("name", vm.name).field("hostname", vm.name);
  if (!vm.uuid.empty()) w.field("uid", vm.uuid).field("uuid", vm.uuid);
  if (!vm.hypervisor.empty()) w.field("hypervisor", vm.hypervisor);
  w.key("network_interfaces").begin_array();
  for (const auto& nic : vm.nics) {
    w.begin_object().field("mac", nic.mac);
    if (!nic.target.empty()) w.field("name", nic.target);
    w.field("type_id", 99).field("type", nic.type);
    w.end_object();
  }
  w.end_array();
  w.key("labels").begin_array();
  for (const auto& [key, value] : vm.labels) w.value(key + "=" + value);
  w.end_array();
  w.end_object();
}

// The VM's details OCSF has no place for.
void write_vm_details(JsonWriter& w, const VmView& vm) {
  w.key("vm").begin_object();
  w.field("host", vm.host).field("state", vm.state).field("vcpus", vm.vcpus);
  w.field("memory_kib", vm.memory_kib).field("persistent", vm.persistent);
  w.key("disks").begin_array();
  for (const auto& d : vm.disks) {
    w.begin_object().field("target", d.target).field("device", d.device).field("type", d.type);
    w.field("source", d.source).field("format", d.format).field("read_only", d.read_only);
    w.end_object();
  }
  w.end_array();
  w.key("nics").begin_array();
  for (const auto& n : vm.nics) {
    w.begin_object().field("mac", n.mac).field("type", n.type).field("source", n.source);
    w.field("target", n.target).field("model", n.model).field("link_up", n.link_up);
    w.end_object();
  }
  w.end_array();
  w.key("labels").begin_object();
  for (const auto& [key, value] : vm.labels) w.data_key(key).value(value);
  w.end_object();
  w.end_object();
}

void write_vm_activity(JsonWriter& w, const Event& e) {
  const VmActivity& a = e.vm_activity;
  w.field("action", a.action);
  if (!a.detail.empty()) w.field("detail", a.detail);
  if (e.kind == EventKind::kVmStats) {
    w.key("stats").begin_object().field("interval_ms", a.interval_ms);
    w.field("cpu_percent", a.cpu_percent);
    w.field("net_rx_bps", a.net_rx_bps).field("net_tx_bps", a.net_tx_bps);
    w.field("disk_read_bps", a.disk_read_bps).field("disk_write_bps", a.disk_write_bps);
    w.field("balloon_rss_kib", a.balloon_rss_kib);
    w.end_object();
  }
  if (!a.before_json.empty()) w.key("before").raw(a.before_json);
  if (!a.after_json.empty()) w.key("after").raw(a.after_json);
}

}  // namespace palisade::ocsf

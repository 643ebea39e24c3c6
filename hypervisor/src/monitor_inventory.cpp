// Hosts and their VMs: connection up and down, the inventory (listed, synced, cached within
// bounds) and the VM lifecycle and reconfiguration events.
#include <spdlog/spdlog.h>

#include "monitor_impl.h"

namespace palisade::hypervisor {

Event Monitor::Impl::vm_event(EventKind kind, VmRef vm, std::string action, std::string detail,
                              std::string message) {
  Event e;
  e.kind = kind;
  e.vm = std::move(vm);
  e.vm_activity.action = std::move(action);
  e.vm_activity.detail = std::move(detail);
  e.vm_activity.message = std::move(message);
  return e;
}

VmRef Monitor::Impl::host_view(const HostState& host) const {
  auto v = std::make_shared<VmView>();
  v->host = host.uri;
  v->hypervisor = host.hypervisor;
  return v;
}

void Monitor::Impl::remember(HostState& host, const VmRef& vm) {
  if (host.domains.size() >= options.max_domains && !host.domains.contains(vm->uuid)) {
    host.uncached++;
    return;
  }
  host.domains[vm->uuid] = vm;
}

VmRef Monitor::Impl::describe(size_t index, const std::string& uuid) {
  HostState& host = hosts[index];
  auto conn = sessions[index]->connection();
  if (conn) {
    try {
      DomainHandle d = conn->find_domain(uuid);
      return std::make_shared<VmView>(describe_domain(d.get(), host.uri, host.hypervisor));
    } catch (const std::exception& e) {
      counters.lookups_failed++;
      spdlog::debug("hv: {}: {}", host.uri, e.what());
    }
  }
  auto it = host.domains.find(uuid);
  return it != host.domains.end() ? it->second : nullptr;
}

// Every domain of the host, described. False when the host could not list them; a domain that
// could not be described keeps its cached view (it is not gone for that).
bool Monitor::Impl::list_inventory(size_t index, std::unordered_map<std::string, VmRef>& now,
                                   std::string& error) {
  HostState& host = hosts[index];
  auto conn = sessions[index]->connection();
  if (!conn) {
    error = "not connected";
    return false;
  }
  try {
    for (const auto& d : conn->list_domains()) {
      const std::string uuid = domain_uuid(d.get());
      try {
        now[uuid] = std::make_shared<VmView>(describe_domain(d.get(), host.uri, host.hypervisor));
      } catch (const std::exception&) {
        counters.lookups_failed++;  // a transient domain that went away while listed, ...
        auto it = host.domains.find(uuid);
        if (it != host.domains.end()) now[uuid] = it->second;
      }
    }
  } catch (const std::exception& e) {
    error = e.what();
    return false;
  }
  return true;
}

void Monitor::Impl::host_up(size_t index) {
  HostState& host = hosts[index];
  auto conn = sessions[index]->connection();
  if (!conn) return;
  host.hypervisor = conn->hypervisor_type();
  const bool restored = host.ever_connected;
  host.connected = host.ever_connected = true;
  host.unreachable_reported = false;
  std::unordered_map<std::string, VmRef> now;
  std::string error;
  const bool listed = list_inventory(index, now, error);
  Event e = vm_event(EventKind::kVmHost, host_view(host), restored ? "restored" : "connected", {},
                     host.uri + (restored ? ": connection restored, " : ": connected, ") +
                         (listed ? std::to_string(now.size()) + " domain(s)"
                                 : "the domains could not be listed: " + error));
  emit(e);
  if (!listed) {
    // The previous inventory stays; the listing is retried until it works.
    host.needs_sync = true;
    spdlog::warn("hv: {}: cannot list domains: {}", host.uri, error);
    return;
  }
  host.needs_sync = false;
  if (restored) resync(host, now, "while-disconnected");
  for (const auto& [uuid, vm] : now) {
    Event inv = vm_event(EventKind::kVmInventory, vm, "present");
    emit(inv);
  }
  replace_inventory(host, now);
  recover_leftover_overlays(index);
  spdlog::info("hv: {}: {} ({} domains)", host.uri, restored ? "re-synced" : "connected",
               now.size());
  write_status();  // a host's connection is what an operator checks first
}

void Monitor::Impl::replace_inventory(HostState& host,
                                      const std::unordered_map<std::string, VmRef>& now) {
  for (const auto& [uuid, vm] : host.domains) {
    if (!now.contains(uuid)) forget_vm(uuid);
  }
  host.domains.clear();
  host.uncached = 0;
  for (const auto& [uuid, vm] : now) remember(host, vm);
}

// Lists the host again and reports the differences with the cache as lifecycle events: after
// dropped notices, or when a listing failed before.
void Monitor::Impl::sync_inventory(size_t index, const std::string& why) {
  HostState& host = hosts[index];
  std::unordered_map<std::string, VmRef> now;
  std::string error;
  if (!list_inventory(index, now, error)) {
    host.needs_sync = true;
    return;
  }
  host.needs_sync = false;
  resync(host, now, why);
  replace_inventory(host, now);
}

// Running VMs left on an inspection overlay (the process died mid-inspection, a merge failed).
void Monitor::Impl::recover_leftover_overlays(size_t index) {
  auto conn = sessions[index]->connection();
  if (!conn || options.read_only) return;
  for (const auto& [uuid, vm] : hosts[index].domains) {
    if (inspections && inspections->busy(uuid)) continue;
    bool on_overlay = false;
    for (const auto& d : vm->disks) {
      on_overlay = on_overlay || d.source.rfind(options.inspection.overlay_directory + "/", 0) == 0;
    }
    if (!on_overlay) continue;
    try {
      DomainHandle d = conn->find_domain(uuid);
      for (const auto& line : recover_overlays(d.get(), options.inspection.overlay_directory)) {
        spdlog::warn("hv: {}", line);
        Event e = vm_event(EventKind::kVmInspection, vm, "recovered", {}, line);
        emit(e);
      }
    } catch (const std::exception& e) {
      spdlog::warn("hv: {}: {}", vm->name, e.what());
    }
  }
}

// The lifecycle action that leads to a state, for differences found by a re-sync.
std::string Monitor::Impl::action_for_state(const std::string& state) {
  if (state == "running" || state == "blocked") return "started";
  if (state == "paused") return "suspended";
  if (state == "crashed" || state == "pmsuspended" || state == "shutdown") return state;
  return "stopped";
}

// What changed while the monitor was not told, as lifecycle events with `why` as detail.
void Monitor::Impl::resync(const HostState& host, const std::unordered_map<std::string, VmRef>& now,
                           const std::string& why) {
  for (const auto& [uuid, before] : host.domains) {
    if (!now.contains(uuid)) {
      auto gone = std::make_shared<VmView>(*before);
      gone->state = "undefined";
      Event e = vm_event(EventKind::kVmLifecycle, gone, "undefined", why);
      emit(e);
    }
  }
  for (const auto& [uuid, vm] : now) {
    auto it = host.domains.find(uuid);
    if (it == host.domains.end()) {
      Event e = vm_event(EventKind::kVmLifecycle, vm, "defined", why);
      emit(e);
    } else if (action_for_state(it->second->state) != action_for_state(vm->state)) {
      Event e = vm_event(EventKind::kVmLifecycle, vm, action_for_state(vm->state), why);
      emit(e);
    }
  }
}

void Monitor::Impl::forget_vm(const std::string& uuid) {
  rates.forget(uuid);
  behaviour.forget(uuid);
  if (inspections) inspections->forget(uuid);
}

void Monitor::Impl::host_down(size_t index, const std::string& message) {
  HostState& host = hosts[index];
  host.connected = false;
  Event e = vm_event(EventKind::kVmHost, host_view(host), "lost", {}, host.uri + ": " + message);
  emit(e);
  write_status();
  spdlog::warn("hv: {}: {}", host.uri, message);
}

void Monitor::Impl::host_unreachable(size_t index, const std::string& message) {
  HostState& host = hosts[index];
  if (host.unreachable_reported) return;
  host.unreachable_reported = true;
  Event e = vm_event(EventKind::kVmHost, host_view(host), "unreachable", {}, message);
  emit(e);
  spdlog::warn("hv: {}", message);
}

// The state a lifecycle event leaves the VM in. Events are handled after the fact: by then the
// VM may have moved on (or be gone), so the event says what it implies, not what a query says.
std::string Monitor::Impl::state_after(std::string_view action, std::string_view detail,
                                       const std::string& queried) {
  if (action == "started" || action == "resumed") return "running";
  if (action == "suspended") return "paused";
  // A shutdown event says the guest is shutting down, not that it is off (a fake reboot or
  // on_poweroff=preserve keep it): what libvirt says now is the better answer.
  if (action == "shutdown") return queried.empty() ? "shutdown" : queried;
  if (action == "stopped" || (action == "crashed" && detail == "stopped")) return "shutoff";
  if (action == "crashed" || action == "pmsuspended" || action == "undefined") {
    return std::string(action);
  }
  if (action == "migrated") return detail == "left" ? "shutoff" : "running";
  return queried.empty() ? "shutoff" : queried;
}

void Monitor::Impl::lifecycle(const Notice& n) {
  HostState& host = hosts[n.host];
  const LifecycleName name = lifecycle_name(n.event, n.detail);
  VmRef vm = name.action == "undefined" ? nullptr : describe(n.host, n.uuid);
  if (!vm) {
    auto it = host.domains.find(n.uuid);
    if (it != host.domains.end()) vm = it->second;
  }
  auto view = vm ? std::make_shared<VmView>(*vm) : std::make_shared<VmView>();
  if (!vm) {
    view->host = host.uri;
    view->hypervisor = host.hypervisor;
    view->uuid = n.uuid;
    view->name = n.name;
  }
  view->state = state_after(name.action, name.detail, vm ? vm->state : std::string());
  vm = view;
  const bool gone = name.action == "undefined" ||
                    (view->state == "shutoff" && !view->persistent);  // a transient VM ended
  if (gone) {
    host.domains.erase(n.uuid);
    forget_vm(n.uuid);
  } else {
    remember(host, vm);
    // Rates and sustained windows do not carry over a stop: the next run starts afresh.
    if (view->state != "running" && view->state != "paused") {
      rates.forget(n.uuid);
      behaviour.forget(n.uuid);
    }
  }
  Event e =
      vm_event(EventKind::kVmLifecycle, vm, std::string(name.action), std::string(name.detail));
  emit(e);
}

void Monitor::Impl::reconfigured(const Notice& n) {
  VmRef vm = describe(n.host, n.uuid);
  if (!vm) return;
  remember(hosts[n.host], vm);
  Event e = vm_event(EventKind::kVmInventory, vm, "configured",
                     n.type == Notice::Type::kMetadata ? "metadata" : "devices");
  emit(e);
}

}  // namespace palisade::hypervisor

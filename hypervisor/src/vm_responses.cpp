#include "palisade/hypervisor/vm_responses.h"

#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <filesystem>

#include "palisade/agent/respond.h"
#include "palisade/hypervisor/domain_xml.h"

namespace palisade::hypervisor {
namespace {

constexpr std::pair<VmAction, std::string_view> kNames[] = {
    {VmAction::kSuspend, "suspend"},   {VmAction::kResume, "resume"},
    {VmAction::kSnapshot, "snapshot"}, {VmAction::kIsolate, "isolate"},
    {VmAction::kRelease, "release"},   {VmAction::kShutdown, "shutdown"},
};

std::string utc_stamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

ActionOutcome failed(std::string what) {
  return ActionOutcome{false, what + ": " + last_libvirt_error(), {}};
}

ActionOutcome set_links(virDomainPtr domain, bool up) {
  const std::string xml = domain_xml(domain);
  agent::VmView vm;
  parse_domain_xml(xml, vm);
  if (vm.nics.empty()) return ActionOutcome{false, "the VM has no network interface", {}};
  ActionOutcome outcome{true, "", nlohmann::json::array()};
  for (const auto& nic : vm.nics) {
    const std::string device = interface_with_link(xml, nic.mac, up);
    // Live only: the running VM loses its links now; its stored definition is left alone so that
    // a release cannot be forgotten in it.
    const bool ok = virDomainUpdateDeviceFlags(domain, device.c_str(), VIR_DOMAIN_AFFECT_LIVE) == 0;
    outcome.evidence.push_back({{"mac", nic.mac},
                                {"link", up ? "up" : "down"},
                                {"ok", ok},
                                {"error", ok ? "" : last_libvirt_error()}});
    outcome.ok = outcome.ok && ok;
  }
  outcome.detail = std::string(up ? "links up on " : "links down on ") +
                   std::to_string(vm.nics.size()) + " interface(s)" +
                   (outcome.ok ? "" : " (some failed: see evidence)");
  return outcome;
}

// The memory of a running VM, as an ELF core (crash, volatility read it), without pausing it.
std::optional<std::string> dump_memory(virDomainPtr domain, const std::string& directory,
                                       std::string& error) {
  const std::string path = directory + "/memory.elf";
  if (virDomainCoreDumpWithFormat(domain, path.c_str(), VIR_DOMAIN_CORE_DUMP_FORMAT_RAW,
                                  VIR_DUMP_MEMORY_ONLY | VIR_DUMP_LIVE) != 0) {
    error = last_libvirt_error();
    return std::nullopt;
  }
  return path;
}

// An external disk-only snapshot: the images as they are now become read-only backing files
// (the evidence), the VM goes on writing to new overlays next to them.
ActionOutcome snapshot_disks(virDomainPtr domain, const std::string& name) {
  agent::VmView vm;
  parse_domain_xml(domain_xml(domain), vm);
  std::string xml = "<domainsnapshot><name>" + name +
                    "</name><description>palisade forensic snapshot</description><disks>";
  nlohmann::json frozen = nlohmann::json::array();
  for (const auto& d : vm.disks) {
    const bool image = d.device == "disk" && d.type == "file" && !d.read_only;
    xml += "<disk name='" + d.target + "' snapshot='" + (image ? "external" : "no") + "'/>";
    if (image) frozen.push_back({{"target", d.target}, {"image", d.source}, {"format", d.format}});
  }
  xml += "</disks></domainsnapshot>";
  if (frozen.empty()) return ActionOutcome{false, "the VM has no file-backed disk to snapshot", {}};
  virDomainSnapshotPtr snap = virDomainSnapshotCreateXML(
      domain, xml.c_str(),
      VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC);
  if (snap == nullptr) return failed("disk snapshot " + name);
  virDomainSnapshotFree(snap);
  return ActionOutcome{true, "", {{"name", name}, {"frozen_disks", frozen}}};
}

ActionOutcome snapshot(virDomainPtr domain, const ResponseOptions& options) {
  const std::string name = "palisade-forensic-" + utc_stamp();
  const std::string directory = options.evidence_directory + "/" + domain_name(domain) + "-" + name;
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) return ActionOutcome{false, directory + ": " + ec.message(), {}};
  ::chmod(options.evidence_directory.c_str(), 0700);
  ::chmod(directory.c_str(), 0700);
  nlohmann::json evidence = {{"name", name}, {"directory", directory}};
  std::string memory_note;
  const std::string state = domain_state(domain);
  if (state == "running" || state == "paused") {
    std::string error;
    if (auto path = dump_memory(domain, directory, error)) {
      evidence["memory"] = *path;
      memory_note = "memory dumped to " + *path;
    } else {
      memory_note = "memory not dumped (" + error + ")";
    }
  } else {
    memory_note = "no memory (the VM is " + state + ")";
  }
  ActionOutcome disks = snapshot_disks(domain, name);
  if (disks.ok) evidence["frozen_disks"] = disks.evidence["frozen_disks"];
  ActionOutcome outcome;
  outcome.ok = disks.ok || evidence.contains("memory");
  outcome.detail = memory_note + "; " +
                   (disks.ok ? "disk snapshot " + name +
                                   " taken (the images as they were are "
                                   "kept read-only as its backing files)"
                             : disks.detail);
  outcome.evidence = std::move(evidence);
  return outcome;
}

ActionOutcome simple(int rc, std::string done, const std::string& what) {
  return rc == 0 ? ActionOutcome{true, std::move(done), {}} : failed(what);
}

}  // namespace

std::string_view action_name(VmAction action) {
  for (const auto& [a, name] : kNames) {
    if (a == action) return name;
  }
  return "unknown";
}

std::optional<VmAction> parse_action(std::string_view name) {
  for (const auto& [a, n] : kNames) {
    if (n == name) return a;
  }
  return std::nullopt;
}

ActionOutcome carry_out(Connection& connection, virDomainPtr domain, VmAction action,
                        const ResponseOptions& options) {
  (void)connection;
  try {
    switch (action) {
      case VmAction::kSuspend:
        return simple(virDomainSuspend(domain), "vCPUs paused", "suspend");
      case VmAction::kResume:
        return simple(virDomainResume(domain), "resumed", "resume");
      case VmAction::kShutdown:
        if (options.force) return simple(virDomainDestroy(domain), "powered off", "power off");
        return simple(virDomainShutdown(domain), "shutdown requested (ACPI power button)",
                      "shutdown");
      case VmAction::kIsolate:
        return set_links(domain, false);
      case VmAction::kRelease:
        return set_links(domain, true);
      case VmAction::kSnapshot:
        return snapshot(domain, options);
    }
  } catch (const std::exception& e) {
    return ActionOutcome{false, e.what(), {}};
  }
  return ActionOutcome{false, "unknown action", {}};
}

nlohmann::json vm_remediation_record(VmAction action, const agent::VmView& vm,
                                     const ActionOutcome& outcome,
                                     const nlohmann::json& requested_by) {
  const bool network = action == VmAction::kIsolate || action == VmAction::kRelease;
  int activity = 99;
  switch (action) {
    case VmAction::kSuspend:
    case VmAction::kIsolate:
      activity = 1;  // Isolate
      break;
    case VmAction::kResume:
    case VmAction::kRelease:
      activity = 3;  // Restore
      break;
    case VmAction::kShutdown:
      activity = 2;  // Evict
      break;
    case VmAction::kSnapshot:
      break;
  }
  nlohmann::json record = agent::remediation_event(network ? 7004 : 7001, activity, outcome.ok,
                                                   outcome.detail, requested_by);
  if (activity == 99) {
    record["activity_name"] = "Snapshot";
  }
  record["observer"] = record["device"];
  record["device"] = {{"type_id", 6},        {"type", "Virtual"}, {"name", vm.name},
                      {"hostname", vm.name}, {"uid", vm.uuid},    {"hypervisor", vm.hypervisor}};
  auto& palisade = record["unmapped"]["palisade"];
  palisade["response"] = action_name(action);
  palisade["vm"] = {{"name", vm.name}, {"uuid", vm.uuid}, {"host", vm.host}};
  if (!outcome.evidence.is_null()) palisade["evidence"] = outcome.evidence;
  return record;
}

}  // namespace palisade::hypervisor

#include "palisade/hypervisor/vm_responses.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "palisade/hypervisor/domain_xml.h"
#include "palisade/ocsf/remediation.h"

namespace palisade::hypervisor {
namespace {

constexpr std::pair<VmAction, std::string_view> kNames[] = {
    {VmAction::kSuspend, "suspend"},   {VmAction::kResume, "resume"},
    {VmAction::kSnapshot, "snapshot"}, {VmAction::kIsolate, "isolate"},
    {VmAction::kRelease, "release"},   {VmAction::kShutdown, "shutdown"},
};

// UTC to the millisecond: two snapshots of a VM in one second must not share a name.
std::string utc_stamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(ms.count()));
  return out;
}

// A VM name as a path component: what the guest's owner chose stays out of the path's syntax.
std::string path_safe(const std::string& name) {
  std::string out;
  for (char c : name.substr(0, 64)) {
    out +=
        std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ? c : '_';
  }
  return out.empty() || out[0] == '.' ? "_" + out : out;
}

// mkdir 0700, refusing a symlink or a directory someone else owns in its place: evidence is
// written as root, and must go where it is meant to.
std::string private_directory(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return path + ": " + std::strerror(errno);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (!S_ISDIR(st.st_mode)) return path + ": not a directory (a symlink?)";
  if (st.st_uid != ::geteuid()) return path + ": owned by uid " + std::to_string(st.st_uid);
  ::chmod(path.c_str(), 0700);
  return {};
}

// Whether the URI names the local host (the dump is written by the hypervisor host's libvirtd,
// the evidence directory is this machine's).
bool local_uri(const std::string& uri) {
  const size_t scheme = uri.find("://");
  return scheme != std::string::npos && scheme + 3 < uri.size() && uri[scheme + 3] == '/';
}

ActionOutcome failed(const std::string& what) {
  return ActionOutcome{false, what + ": " + last_libvirt_error(), {}};
}

// Sets one NIC's link in one definition (the running VM's or the stored one); "" when done.
std::string update_link(virDomainPtr domain, const std::string& xml, const std::string& mac,
                        bool up, unsigned int affect) {
  try {
    const std::string device = interface_with_link(xml, mac, up);
    if (virDomainUpdateDeviceFlags(domain, device.c_str(), affect) == 0) return {};
    return last_libvirt_error();
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Every NIC's link, in the running VM (the guest sees its carrier drop at once) and in its stored
// definition when it has one (a VM started again, or started later, stays isolated until it is
// released). Each definition is updated with its own <interface> element: the live one carries
// run-time details (host device, alias) the stored one must not get.
ActionOutcome set_links(virDomainPtr domain, bool up) {
  const bool active = virDomainIsActive(domain) == 1;
  const bool persistent = virDomainIsPersistent(domain) == 1;
  const std::string live_xml = active ? domain_xml(domain) : std::string();
  const std::string stored_xml = persistent ? domain_xml(domain, VIR_DOMAIN_XML_INACTIVE) : "";
  VmView vm;
  parse_domain_xml(active ? live_xml : stored_xml, vm);
  if (vm.nics.empty()) return ActionOutcome{false, "the VM has no network interface", {}};
  ActionOutcome outcome{true, "", nlohmann::json::array()};
  for (const auto& nic : vm.nics) {
    nlohmann::json entry = {{"mac", nic.mac}, {"link", up ? "up" : "down"}};
    if (active) {
      const std::string error = update_link(domain, live_xml, nic.mac, up, VIR_DOMAIN_AFFECT_LIVE);
      entry["live"] = error.empty() ? "done" : error;
      outcome.ok = outcome.ok && error.empty();
    }
    if (persistent) {
      const std::string error =
          update_link(domain, stored_xml, nic.mac, up, VIR_DOMAIN_AFFECT_CONFIG);
      entry["stored"] = error.empty() ? "done" : error;
      outcome.ok = outcome.ok && error.empty();
    }
    outcome.evidence.push_back(std::move(entry));
  }
  outcome.detail = std::string(up ? "links up on " : "links down on ") +
                   std::to_string(vm.nics.size()) + " interface(s)" +
                   (active ? (persistent ? ", running and stored" : ", running (transient VM)")
                           : ", stored (the VM is not running)") +
                   (outcome.ok ? "" : " (some failed: see evidence)");
  return outcome;
}

// The memory of a running VM, as an ELF core (crash, volatility read it). QEMU stops the vCPUs
// while it writes the dump (about a second per 256 MiB here); the VM then runs on.
std::optional<std::string> dump_memory(virDomainPtr domain, const std::string& directory,
                                       uint64_t memory_kib, std::string& error) {
  struct statvfs fs {};
  if (::statvfs(directory.c_str(), &fs) == 0 &&
      static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < memory_kib * 1024 + (64ULL << 20)) {
    error = "not enough free space in " + directory + " for " + std::to_string(memory_kib >> 10) +
            " MiB of memory";
    return std::nullopt;
  }
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
  VmView vm;
  parse_domain_xml(domain_xml(domain), vm);
  std::string xml = "<domainsnapshot><name>" + name +
                    "</name><description>palisade forensic snapshot</description><disks>";
  nlohmann::json frozen = nlohmann::json::array();
  for (const auto& d : vm.disks) {
    const bool image = d.device == "disk" && d.type == "file" && !d.read_only;
    xml += "<disk name='" + xml_escape(d.target) + "' snapshot='" + (image ? "external" : "no") +
           "'/>";
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

ActionOutcome snapshot(Connection& connection, virDomainPtr domain,
                       const ResponseOptions& options) {
  const std::string name = "palisade-forensic-" + utc_stamp();
  const std::string directory = options.evidence_directory + "/" + path_safe(domain_name(domain)) +
                                "-" + domain_uuid(domain).substr(0, 8) + "-" + name;
  std::error_code ec;
  std::filesystem::create_directories(
      std::filesystem::path(options.evidence_directory).parent_path(), ec);
  for (const std::string& dir : {options.evidence_directory, directory}) {
    const std::string error = private_directory(dir);
    if (!error.empty()) return ActionOutcome{false, error, {}};
  }
  nlohmann::json evidence = {{"name", name}, {"directory", directory}};
  std::string memory_note;
  const std::string state = domain_state(domain);
  VmView vm;
  parse_domain_xml(domain_xml(domain), vm);
  if (!local_uri(connection.uri())) {
    memory_note = "no memory dump (the evidence directory is on this machine, " + connection.uri() +
                  " is another)";
  } else if (state == "running" || state == "paused") {
    std::string error;
    if (auto path = dump_memory(domain, directory, vm.memory_kib, error)) {
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
        return snapshot(connection, domain, options);
    }
  } catch (const std::exception& e) {
    return ActionOutcome{false, e.what(), {}};
  }
  return ActionOutcome{false, "unknown action", {}};
}

nlohmann::json vm_remediation_record(VmAction action, const VmView& vm,
                                     const ActionOutcome& outcome,
                                     const nlohmann::json& requested_by) {
  const bool network = action == VmAction::kIsolate || action == VmAction::kRelease;
  auto activity = ocsf::RemediationActivity::kOther;
  switch (action) {
    case VmAction::kSuspend:
    case VmAction::kIsolate:
      activity = ocsf::RemediationActivity::kIsolate;
      break;
    case VmAction::kResume:
    case VmAction::kRelease:
      activity = ocsf::RemediationActivity::kRestore;
      break;
    case VmAction::kShutdown:
      activity = ocsf::RemediationActivity::kEvict;
      break;
    case VmAction::kSnapshot:
      break;
  }
  nlohmann::json record = ocsf::remediation_event(
      network ? ocsf::RemediationClass::kNetwork : ocsf::RemediationClass::kGeneric, activity,
      outcome.ok, outcome.detail, requested_by);
  if (activity == ocsf::RemediationActivity::kOther) {
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

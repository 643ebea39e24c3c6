#include "palisade/hypervisor/vm_inspector.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "palisade/hypervisor/domain_xml.h"

namespace palisade::hypervisor {
namespace {

struct Overlay {
  std::string target;
  std::string path;  // the overlay the snapshot created
  std::string base;  // the image that was active before it
};

std::vector<GuestDisk> disks_of(const VmView& vm) {
  std::vector<GuestDisk> disks;
  for (const auto& d : vm.disks) {
    if (d.device != "disk" || (d.type != "file" && d.type != "block") || d.source.empty()) continue;
    disks.push_back(GuestDisk{d.source, d.format});
  }
  return disks;
}

std::string stamp() {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
}

// Freezes the VM's file-backed disks: new overlays take its writes, the images stay as they are.
std::vector<Overlay> freeze(virDomainPtr domain, const VmView& vm, const std::string& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) throw LibvirtError(directory + ": " + ec.message());
  std::vector<Overlay> overlays;
  std::string xml = "<domainsnapshot><disks>";
  for (const auto& d : vm.disks) {
    const bool frozen = d.device == "disk" && d.type == "file" && !d.read_only;
    if (frozen) {
      overlays.push_back(
          Overlay{d.target, directory + "/" + vm.uuid + "-" + stamp() + "-" + d.target + ".qcow2",
                  d.source});
      xml += "<disk name='" + xml_escape(d.target) +
             "' snapshot='external'><driver type='qcow2'/><source file='" +
             xml_escape(overlays.back().path) + "'/></disk>";
    } else {
      xml += "<disk name='" + xml_escape(d.target) + "' snapshot='no'/>";
    }
  }
  xml += "</disks></domainsnapshot>";
  if (overlays.empty()) throw LibvirtError("no file-backed disk to freeze");
  virDomainSnapshotPtr snap = virDomainSnapshotCreateXML(
      domain, xml.c_str(),
      VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC |
          VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA);
  if (snap == nullptr) throw_libvirt_error("external snapshot of " + vm.name);
  virDomainSnapshotFree(snap);
  return overlays;
}

bool wait_for_job(virDomainPtr domain, const std::string& target, bool until_ready,
                  std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    virDomainBlockJobInfo info{};
    const int rc = virDomainGetBlockJobInfo(domain, target.c_str(), &info, 0);
    if (rc < 0) return false;
    if (rc == 0) return !until_ready;  // no job any more
    if (until_ready && info.end > 0 && info.cur == info.end) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// Makes the image below the overlay active again. libvirt accepts the pivot only once QEMU has
// reported the commit job ready, which can come a moment after the job's progress reads complete
// (seen on a loaded host): until then the pivot is refused, so it is retried up to the limit.
bool pivot(virDomainPtr domain, const char* disk, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (virDomainBlockJobAbort(domain, disk, VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) != 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return true;
}

// Writes what the VM wrote to one overlay back into the image right below it (a shallow active
// commit: never deeper, so a shared base image or a forensic snapshot's frozen image below stays
// untouched) and makes that image active again. Only when the live chain is still exactly ours:
// anything else (another snapshot taken meanwhile) is left to an operator, nothing is lost.
std::string merge_back(virDomainPtr domain, const Overlay& o) {
  const DiskChain chain = disk_chain(domain_xml(domain), o.target);
  if (chain.active != o.path || chain.backing != o.base) {
    return "the disk's chain changed meanwhile (active " + chain.active + ", below it " +
           chain.backing + ")";
  }
  const char* disk = o.target.c_str();
  if (virDomainBlockCommit(domain, disk, nullptr, nullptr, 0,
                           VIR_DOMAIN_BLOCK_COMMIT_ACTIVE | VIR_DOMAIN_BLOCK_COMMIT_SHALLOW) != 0) {
    return "commit: " + last_libvirt_error();
  }
  if (!wait_for_job(domain, o.target, true, std::chrono::seconds(600))) {
    std::string error = "commit did not complete: " + last_libvirt_error();
    virDomainBlockJobAbort(domain, disk, 0);  // leaves the VM on the overlay, consistent
    return error;
  }
  if (!pivot(domain, disk, std::chrono::seconds(60)) ||
      !wait_for_job(domain, o.target, false, std::chrono::seconds(60))) {
    return "pivot: " + last_libvirt_error();
  }
  return {};
}

void thaw(virDomainPtr domain, const std::vector<Overlay>& overlays,
          std::vector<std::string>& notes) {
  for (const auto& o : overlays) {
    std::string error;
    try {
      error = merge_back(domain, o);
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (error.empty()) {
      ::unlink(o.path.c_str());
      continue;
    }
    // The VM keeps running on the overlay: nothing is lost; the monitor retries when it next
    // syncs the host, or an operator commits it (virsh blockcommit DOMAIN DISK --active --shallow
    // --pivot).
    notes.push_back("could not merge overlay " + o.path + " of " + o.target + " back into " +
                    o.base + ": " + error);
    spdlog::error("hv: {}", notes.back());
  }
}

}  // namespace

std::vector<std::string> recover_overlays(virDomainPtr domain,
                                          const std::string& overlay_directory) {
  std::vector<std::string> done;
  if (overlay_directory.empty()) return done;
  const std::string prefix = overlay_directory + (overlay_directory.back() == '/' ? "" : "/");
  const std::string xml = domain_xml(domain);
  VmView vm;
  parse_domain_xml(xml, vm);
  const bool active = virDomainIsActive(domain) == 1;
  for (const auto& d : vm.disks) {
    if (d.source.rfind(prefix, 0) != 0) continue;
    const Overlay o{d.target, d.source, disk_chain(xml, d.target).backing};
    if (!active) {
      done.push_back(vm.name + ": " + d.target + " is on inspection overlay " + d.source +
                     " and the VM is not running: commit it offline (qemu-img commit) and point "
                     "the disk back at " +
                     o.base);
      continue;
    }
    const std::string error = o.base.empty() ? "no image below it" : merge_back(domain, o);
    if (error.empty()) {
      ::unlink(o.path.c_str());
      done.push_back(vm.name + ": " + d.target + " merged back from a leftover inspection overlay");
    } else {
      done.push_back(vm.name + ": leftover inspection overlay " + d.source +
                     " not merged: " + error);
    }
  }
  return done;
}

VmInspection inspect_vm(Connection& connection, virDomainPtr domain,
                        const policies::VmInspectionSpec& spec,
                        const InspectionSettings& settings) {
  VmInspection result;
  result.vm = describe_domain(domain, connection.uri(), connection.hypervisor_type());
  InspectionOptions options;
  options.disks = disks_of(result.vm);
  if (options.disks.empty()) throw InspectionError(result.vm.name + ": no disk image to inspect");
  if (!spec.paths.empty()) options.fim_paths = spec.paths;
  options.time_limit =
      std::chrono::seconds(std::max<uint64_t>(1, spec.time_limit_ns / 1'000'000'000ULL));
  options.backend = settings.backend;
  options.backend_settings = settings.backend_settings;

  const bool active = result.vm.state != "shutoff" && result.vm.state != "crashed";
  std::vector<Overlay> overlays;
  if (!active) {
    result.method = "offline";
  } else if (spec.method == "snapshot" && !connection.read_only()) {
    try {
      overlays = freeze(domain, result.vm, settings.overlay_directory);
      result.method = "snapshot";
    } catch (const std::exception& e) {
      result.method = "live";
      result.notes.push_back(std::string("snapshot not possible, read live: ") + e.what());
    }
  } else {
    result.method = "live";
    if (spec.method == "snapshot") result.notes.push_back("read-only connection: read live");
  }
  try {
    result.inventory = inspect_guest(options);
  } catch (...) {
    if (!overlays.empty()) thaw(domain, overlays, result.notes);
    throw;
  }
  if (!overlays.empty()) thaw(domain, overlays, result.notes);
  return result;
}

void record_inspection(VmInspection& inspection, InspectionStore& store) {
  auto previous = store.latest(inspection.vm.uuid);
  inspection.first = !previous.has_value();
  if (previous) inspection.changes = compare(*previous, inspection.inventory);
  store.save(inspection.vm.uuid, inspection.vm.name, inspection.method, inspection.inventory);
}

std::vector<Event> inspection_events(const VmInspection& inspection) {
  auto vm = std::make_shared<const VmView>(inspection.vm);
  std::vector<Event> events;
  Event done;
  done.kind = EventKind::kVmInspection;
  done.vm = vm;
  done.vm_activity.action = "completed";
  done.vm_activity.detail = inspection.method;
  const GuestInventory& inv = inspection.inventory;
  std::string message =
      inspection.vm.name + ": " + inv.product_name + " (" + inv.distro + " " +
      std::to_string(inv.major_version) + "." + std::to_string(inv.minor_version) + "), " +
      std::to_string(inv.users.size()) + " users, " + std::to_string(inv.authorized_keys.size()) +
      " SSH keys, " + std::to_string(inv.cron.size()) + " cron jobs, " +
      std::to_string(inv.setid_files.size()) + " SUID/SGID files, " +
      std::to_string(inv.packages.size()) + " packages, " + std::to_string(inv.files.size()) +
      " baseline entries; " +
      (inspection.first
           ? "first inspection"
           : std::to_string(inspection.changes.size()) + " change(s) since the previous one") +
      " (" + std::to_string(inv.duration_ms) + " ms, " + inspection.method + ")";
  for (const auto& note : inspection.notes) message += "; " + note;
  done.vm_activity.message = std::move(message);
  events.push_back(std::move(done));
  for (const auto& change : inspection.changes) {
    Event e;
    e.kind = EventKind::kVmGuestChange;
    e.vm = vm;
    e.vm_activity.action = change.kind;
    e.vm_activity.detail = change.subject;
    e.vm_activity.message = change.detail;
    if (!change.before.is_null()) e.vm_activity.before_json = change.before.dump();
    if (!change.after.is_null()) e.vm_activity.after_json = change.after.dump();
    events.push_back(std::move(e));
  }
  return events;
}

Event inspection_failure_event(VmView vm, const std::string& reason) {
  Event e;
  e.kind = EventKind::kVmInspection;
  e.vm = std::make_shared<const VmView>(std::move(vm));
  e.vm_activity.action = "failed";
  e.vm_activity.message = reason;
  return e;
}

}  // namespace palisade::hypervisor

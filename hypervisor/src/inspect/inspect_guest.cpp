// One inspection from start to end: a private directory, a handle, the watchdog, the appliance;
// find the OS, mount it read-only, walk and hash the trees once, let the collectors read.
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>

#include "inspect/appliance_watchdog.h"
#include "inspect/collectors.h"
#include "inspect/guest_tree.h"
#include "inspect/guestfs_handle.h"
#include "inspect/warnings.h"
#include "palisade/hypervisor/guest_inspection.h"

namespace palisade::hypervisor {
namespace {

using inspect::ApplianceWatchdog;
using inspect::Collectors;
using inspect::GuestfsError;
using inspect::GuestfsHandle;
using inspect::GuestTree;
using inspect::Warnings;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMaxFileBytesLimit = 256ULL << 20;

// A 0700 directory of our own for libguestfs's temporary files (the disk overlays): its name
// marks the appliance's processes for the watchdog, and it is removed with everything in it.
class PrivateDirectory {
 public:
  PrivateDirectory() = default;
  ~PrivateDirectory() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  PrivateDirectory(const PrivateDirectory&) = delete;
  PrivateDirectory& operator=(const PrivateDirectory&) = delete;

  void create(const std::string& base) {
    std::string name = base + "/palisade-inspect-XXXXXX";
    if (mkdtemp(name.data()) == nullptr) {
      throw InspectionError("cannot create a temporary directory in " + base + ": " +
                            std::strerror(errno));
    }
    path_ = name;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string disk_list(const InspectionOptions& options) {
  std::string out;
  for (const GuestDisk& d : options.disks) out += (out.empty() ? "" : ", ") + d.path;
  return out;
}

void validate(const InspectionOptions& options) {
  if (options.disks.empty()) throw InspectionError("no disks to inspect");
  for (const GuestDisk& d : options.disks) {
    if (d.path.empty()) throw InspectionError("a disk without a path");
  }
  if (options.time_limit.count() <= 0) throw InspectionError("the time limit must be positive");
  if (options.max_file_bytes == 0 || options.max_file_bytes > kMaxFileBytesLimit) {
    throw InspectionError("max_file_bytes must be between 1 and " +
                          std::to_string(kMaxFileBytesLimit));
  }
}

// Every root given resolved inside the guest; the missing ones dropped.
std::vector<std::string> resolve_all(GuestTree& tree, const std::vector<std::string>& roots,
                                     Warnings& warnings) {
  std::vector<std::string> out;
  for (const std::string& root : roots) {
    if (!inspect::normal_path(root)) {
      warnings.add(root + ": not an absolute path without \"..\"; skipped");
      continue;
    }
    if (std::optional<std::string> real = tree.resolve(root)) out.push_back(*real);
  }
  return out;
}

// Filesystems in mount order: a mount point before those inside it.
void mount_all(GuestfsHandle& guest, const std::string& root, Warnings& warnings) {
  auto mounts = guest.inspect_mountpoints(root);
  std::sort(mounts.begin(), mounts.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.first.size(), a.first) < std::make_pair(b.first.size(), b.first);
  });
  for (const auto& [mountpoint, device] : mounts) {
    try {
      guest.mount_read_only(device, mountpoint);
    } catch (const GuestfsError& e) {
      if (mountpoint == "/") throw;
      warnings.add(device + " on " + mountpoint + ": cannot mount: " + e.what());
    }
  }
}

class Inspection {
 public:
  explicit Inspection(const InspectionOptions& options)
      : options_(options), deadline_(Clock::now() + options.time_limit) {}

  GuestInventory run() {
    GuestInventory inventory;
    inventory.time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const Clock::time_point started = Clock::now();
    try {
      inspect(inventory);
    } catch (const GuestfsError& e) {
      check_deadline();
      throw InspectionError(disk_list(options_) + ": " + step_ + ": " + e.what());
    }
    inventory.warnings = warnings_.take();
    inventory.duration_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
    return inventory;
  }

 private:
  void check_deadline() const {
    if (Clock::now() >= deadline_ || (watchdog_ && watchdog_->fired())) {
      throw InspectionError(disk_list(options_) + ": timed out after " +
                            std::to_string(options_.time_limit.count()) + " s (" + step_ + ")");
    }
  }

  void at(const char* step) {
    check_deadline();
    step_ = step;
  }

  void start_appliance() {
    at("starting the appliance");
    if (!options_.backend.empty()) guest_.set_backend(options_.backend);
    if (!options_.backend_settings.empty()) guest_.set_backend_settings(options_.backend_settings);
    directory_.create(guest_.tmpdir());
    guest_.set_tmpdir(directory_.path());
    watchdog_.emplace(deadline_, directory_.path() + "/");
    for (const GuestDisk& disk : options_.disks) {
      if (disk.format.empty()) {
        warnings_.add(disk.path + ": no format given; libguestfs guessed it");
      }
      guest_.add_drive_read_only(disk.path, disk.format);
    }
    guest_.launch();
  }

  std::string find_root(GuestInventory& inventory) {
    at("looking for an operating system");
    const std::vector<std::string> roots = guest_.inspect_os();
    if (roots.empty()) {
      throw InspectionError("no operating system found on " + disk_list(options_));
    }
    const std::string& root = roots.front();
    for (size_t i = 1; i < roots.size(); ++i) {
      warnings_.add("another operating system on " + roots[i] + " was not inspected");
    }
    inventory.root = root;
    inventory.os_type = guest_.inspect_type(root);
    inventory.distro = guest_.inspect_distro(root);
    inventory.product_name = guest_.inspect_product_name(root);
    inventory.hostname = guest_.inspect_hostname(root);
    inventory.major_version = guest_.inspect_major_version(root);
    inventory.minor_version = guest_.inspect_minor_version(root);
    return root;
  }

  void inspect(GuestInventory& inventory) {
    start_appliance();
    const std::string root = find_root(inventory);
    at("mounting the guest's filesystems");
    mount_all(guest_, root, warnings_);

    at("walking the guest's trees");
    GuestTree tree(guest_, options_.max_files, warnings_);
    const std::vector<std::string> fim_roots = resolve_all(tree, options_.fim_paths, warnings_);
    const std::vector<std::string> setid_roots = resolve_all(tree, options_.setid_roots, warnings_);
    std::vector<std::string> walked = fim_roots;
    walked.insert(walked.end(), setid_roots.begin(), setid_roots.end());
    tree.walk(walked, true);
    tree.walk(resolve_all(tree, Collectors::directories(), warnings_), false);

    at("hashing file contents");
    std::vector<std::string> hashed = fim_roots;
    for (const std::string& dir : resolve_all(tree, Collectors::unit_directories(), warnings_)) {
      hashed.push_back(dir);
    }
    tree.hash(hashed);

    Collectors collect(guest_, tree, warnings_, options_.max_file_bytes,
                       [this] { check_deadline(); });
    at("reading accounts");
    collect.accounts(inventory);
    at("reading sudoers");
    collect.sudoers(inventory);
    at("reading SSH authorized keys");
    collect.authorized_keys(inventory);
    at("reading cron jobs");
    collect.cron(inventory);
    at("reading systemd units");
    collect.units(inventory);
    at("listing installed packages");
    collect.packages(root, inventory);
    at("listing setuid and setgid files");
    collect.setid_files(setid_roots, inventory);
    at("recording the file baseline");
    collect.files(fim_roots, inventory);
    inventory.incomplete_roots = tree.incomplete_roots();

    at("stopping the appliance");
    guest_.shutdown();
  }

  const InspectionOptions& options_;
  Clock::time_point deadline_;
  std::string step_ = "starting";
  Warnings warnings_;
  // Destroyed in reverse: the watchdog stops, the handle closes (and reaps the appliance), then
  // the private directory goes.
  PrivateDirectory directory_;
  GuestfsHandle guest_;
  std::optional<ApplianceWatchdog> watchdog_;
};

}  // namespace

GuestInventory inspect_guest(const InspectionOptions& options) {
  validate(options);
  try {
    Inspection inspection(options);
    return inspection.run();
  } catch (const GuestfsError& e) {
    throw InspectionError(disk_list(options) + ": " + e.what());  // creating the handle
  }
}

}  // namespace palisade::hypervisor

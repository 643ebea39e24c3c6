// The parts of an inventory read from the mounted guest, one function each. They share a walked
// GuestTree (so most existence checks cost no appliance round trip) and report what they could
// not read as warnings; only running out of time (Deadline) stops them.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "inspect/guest_tree.h"
#include "inspect/guestfs_handle.h"
#include "inspect/warnings.h"
#include "palisade/hypervisor/guest_inspection.h"

namespace palisade::hypervisor::inspect {

// Throws the inspection's time-out error once the time limit has passed (or the watchdog fired).
using DeadlineCheck = std::function<void()>;

class Collectors {
 public:
  Collectors(GuestfsHandle& guest, GuestTree& tree, Warnings& warnings, uint64_t max_file_bytes,
             DeadlineCheck check_deadline)
      : guest_(guest),
        tree_(tree),
        warnings_(warnings),
        max_file_bytes_(max_file_bytes),
        check_deadline_(std::move(check_deadline)) {}

  // Directories the collectors read besides single files: walked with the other trees.
  static const std::vector<std::string>& directories();
  // Those holding systemd units, hashed with the baseline.
  static const std::vector<std::string>& unit_directories();

  void accounts(GuestInventory& inventory);  // users and groups
  void sudoers(GuestInventory& inventory);
  void authorized_keys(GuestInventory& inventory);  // needs accounts
  void cron(GuestInventory& inventory);
  void units(GuestInventory& inventory);
  void packages(const std::string& root, GuestInventory& inventory);
  void setid_files(const std::vector<std::string>& roots, GuestInventory& inventory);
  void files(const std::vector<std::string>& roots, GuestInventory& inventory);

 private:
  // A small text file: regular files and links to them only (never a FIFO or a device, which
  // would block), at most max_bytes. nullopt when absent or unreadable (then said in warnings).
  std::optional<std::string> read_text(const std::string& path, uint64_t max_bytes);
  std::optional<std::string> read_text(const std::string& path) {
    return read_text(path, max_file_bytes_);
  }
  // The regular files (and links) directly in a collector directory, in name order.
  std::vector<std::string> files_in(const std::string& dir);
  void warn_malformed(const std::string& path, size_t malformed, const char* what);

  GuestfsHandle& guest_;
  GuestTree& tree_;
  Warnings& warnings_;
  uint64_t max_file_bytes_;
  DeadlineCheck check_deadline_;
};

fim::FileRecord file_record(const std::string& path, const TreeEntry& entry);

}  // namespace palisade::hypervisor::inspect

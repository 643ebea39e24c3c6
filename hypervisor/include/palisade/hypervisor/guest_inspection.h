// Agentless inspection of a virtual machine's disks: libguestfs opens the disk images read-only in
// its own small appliance VM and palisade reads what the guest holds (OS identity, accounts, sudo
// rules, SSH keys, cron jobs, systemd units, SUID/SGID files, packages and a file-integrity
// baseline in the node agent's format). Two inspections of the same VM compare into a list of
// changes; the history of inspections is kept in SQLite.
//
// Nothing here ever writes to a guest disk: drives are added read-only (libguestfs puts a
// throw-away overlay in front of them), filesystems are mounted read-only, and no program of the
// guest is ever run. docs/hypervisor-inspection.md says what is collected and how changes read.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "palisade/base/error.h"
#include "palisade/fim/fim.h"

namespace palisade::hypervisor {

struct GuestDisk {
  std::string path;
  // "qcow2", "raw", ...: what libvirt says the disk is. Empty lets libguestfs guess, which a guest
  // can fool (a raw disk whose content looks like qcow2 names a backing file on the host), so an
  // empty format is accepted but reported in the inventory's warnings.
  std::string format;
};

struct InspectionOptions {
  std::vector<GuestDisk> disks;  // all disks of one VM, the boot disk first
  // Trees inside the guest whose every entry goes into the file-integrity baseline.
  std::vector<std::string> fim_paths = {"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/etc"};
  std::vector<std::string> setid_roots = {"/"};  // searched for SUID and SGID regular files
  // The whole inspection, appliance start included. A watchdog kills the appliance when it runs
  // out, so that even a hung call returns; inspect_guest then throws.
  std::chrono::seconds time_limit{300};
  // Entries (files, directories, links) walked over all trees. Beyond it a tree is cut short:
  // said in warnings and incomplete_roots, never silent.
  size_t max_files = 200000;
  uint64_t max_file_bytes = 1ULL << 20;  // bytes read from one text file (passwd, a crontab, ...)
  // libguestfs backend and its settings, e.g. "direct" and {"force_tcg"} where KVM is unusable.
  // Empty: libguestfs's defaults, or LIBGUESTFS_BACKEND / LIBGUESTFS_BACKEND_SETTINGS.
  std::string backend;
  std::vector<std::string> backend_settings;
};

struct GuestUser {
  std::string name;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string home;
  std::string shell;
  bool operator==(const GuestUser&) const = default;
};

struct GuestGroup {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;  // as listed in /etc/group, sorted
  bool operator==(const GuestGroup&) const = default;
};

struct SshKey {
  std::string user;         // the account whose logins the key opens
  std::string file;         // where the key is written
  std::string type;         // "ssh-ed25519", "ssh-rsa", ...
  std::string fingerprint;  // "SHA256:..." as ssh-keygen -l prints it
  std::string comment;
  std::string options;  // "command=...,no-pty", empty when none
  bool operator==(const SshKey&) const = default;
};

struct CronEntry {
  std::string file;
  std::string user;
  std::string schedule;  // five fields joined by one space, "@reboot", or "@daily" for cron.daily
  std::string command;
  bool operator==(const CronEntry&) const = default;
};

struct SystemdUnit {
  std::string path;                    // a unit file or a drop-in (".../x.service.d/override.conf")
  std::string sha256;                  // regular files
  std::string link_target;             // symlinks (aliases, and masks: "/dev/null")
  bool enabled = false;                // some .wants/.requires link pulls it in
  std::vector<std::string> wanted_by;  // those links' paths, sorted
  bool operator==(const SystemdUnit&) const = default;
};

struct Package {
  std::string name;
  std::string version;  // [epoch:]version[-release]
  std::string arch;
  bool operator==(const Package&) const = default;
};

struct GuestInventory {
  int64_t time_ms = 0;  // when the inspection started (Unix epoch)
  int64_t duration_ms = 0;
  std::string root;  // the guest device holding "/", e.g. "/dev/sda1"
  std::string os_type, distro, product_name, hostname;
  int major_version = 0;
  int minor_version = 0;
  std::vector<GuestUser> users;    // /etc/passwd, in file order
  std::vector<GuestGroup> groups;  // /etc/group, in file order
  // Rules and directives in effect, one "FILE: LINE" each: comments and blank lines dropped,
  // continuation lines joined, white space collapsed. /etc/sudoers and /etc/sudoers.d/*.
  std::vector<std::string> sudoers;
  std::vector<SshKey> authorized_keys;
  std::vector<CronEntry> cron;
  std::vector<SystemdUnit> units;
  std::vector<fim::FileRecord> setid_files;  // regular files with setuid or setgid, by path
  std::vector<Package> packages;             // by name
  // The baseline of fim_paths, by path: the node agent's fim::FileRecord. fast_hash stays empty
  // (the content is hashed inside the appliance, where only SHA-256 is available).
  std::vector<fim::FileRecord> files;
  std::vector<std::string> incomplete_roots;  // trees cut short by max_files
  std::vector<std::string> warnings;          // what could not be read, and why (bounded)
  bool operator==(const GuestInventory&) const = default;
};

// What the environment or the guest can make go wrong: no such disk, no OS found, out of time,
// appliance failure. The message says which disk and why.
class InspectionError : public EnvironmentError {
 public:
  using EnvironmentError::EnvironmentError;
};

// Launches one appliance, inspects the first operating system found on the disks, shuts the
// appliance down. Blocking; uses one thread besides the caller's (the watchdog).
GuestInventory inspect_guest(const InspectionOptions& options);

struct GuestChange {
  std::string kind;     // a stable word, listed in docs/hypervisor-inspection.md
  std::string subject;  // the user, key, job, unit, file or package
  std::string path;     // the file in the guest where the change was seen (empty for packages, OS)
  std::string detail;   // one line for people
  nlohmann::json before;  // null when added
  nlohmann::json after;   // null when removed
};

// What changed from one inspection to the next, in a stable order (by kind group, then subject).
// A file of the baseline whose change is already told by a change of meaning (a user added to
// /etc/passwd, a new cron file, a new SUID file, ...) is not reported a second time as a file.
std::vector<GuestChange> compare(const GuestInventory& before, const GuestInventory& after);

nlohmann::json to_json(const GuestInventory& inventory);
GuestInventory inventory_from_json(const nlohmann::json& json);  // throws on a malformed document
nlohmann::json to_json(const GuestChange& change);

// One row per inspection (VM uuid and name, time, how the disks were reached, the inventory), in
// SQLite with WAL; the last keep_per_vm inspections of each VM are kept. One thread at a time.
class InspectionStore {
 public:
  explicit InspectionStore(const std::string& path, size_t keep_per_vm = 5);
  ~InspectionStore();
  InspectionStore(const InspectionStore&) = delete;
  InspectionStore& operator=(const InspectionStore&) = delete;

  // method: how the disks were read, e.g. "offline", "snapshot".
  void save(const std::string& vm_uuid, const std::string& vm_name, const std::string& method,
            const GuestInventory& inventory);
  std::optional<GuestInventory> latest(const std::string& vm_uuid);
  size_t count(const std::string& vm_uuid);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace palisade::hypervisor

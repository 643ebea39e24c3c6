// What the guest's trees hold, walked once and asked many times. A root's parent is resolved
// inside the guest (so "/lib/systemd/system" on a merged-/usr guest becomes
// "/usr/lib/systemd/system") but the root itself and everything below are never followed through
// symlinks, the node agent's rule. A walk is one find0 per root, then one lstat batch per
// directory and one readlink batch per directory holding links; checksums come a whole tree per
// call. The number of entries is bounded: a tree cut short is named in incomplete_roots().
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "inspect/guestfs_handle.h"
#include "inspect/warnings.h"

namespace palisade::hypervisor::inspect {

struct TreeEntry {
  GuestStat stat;
  std::string link_target;  // symlinks
  std::string sha256;       // regular files under a hashed tree
};

class GuestTree {
 public:
  using Entries = std::map<std::string, TreeEntry>;

  GuestTree(GuestfsHandle& guest, size_t max_entries, Warnings& warnings)
      : guest_(guest), budget_(max_entries), warnings_(warnings) {}

  // The root with its parent resolved inside the guest; nullopt when the parent does not exist.
  std::optional<std::string> resolve(const std::string& root);
  // Walks the (resolved) roots that are not under a root walked already. A missing root is only
  // a warning when warn_missing says so.
  void walk(const std::vector<std::string>& roots, bool warn_missing);
  // SHA-256 of every regular file under these walked roots (or of the root, when a file).
  void hash(const std::vector<std::string>& roots);
  // SHA-256 of one regular file of the tree, when not hashed yet.
  void hash_file(const std::string& path);

  const TreeEntry* find(const std::string& path) const;
  // lstat from the tree when it can tell, else from the guest.
  std::optional<GuestStat> lstat(const std::string& path);
  // The entries strictly below dir, in path order.
  std::pair<Entries::const_iterator, Entries::const_iterator> under(const std::string& dir) const;
  const std::vector<std::string>& incomplete_roots() const { return incomplete_; }

 private:
  void walk_one(const std::string& root, bool warn_missing);
  void stat_directory(const std::string& dir, std::vector<std::string>& names);
  void apply_checksum_line(const std::string& root, std::string_view line);
  // Whether the tree can tell that a path does not exist: its nearest recorded ancestor lies under
  // a complete walk and is not a symlink (through which the path may still lead somewhere).
  bool known_absent(const std::string& path) const;

  GuestfsHandle& guest_;
  size_t budget_;  // entries the walks may still record
  Warnings& warnings_;
  Entries entries_;
  std::vector<std::string> walked_;      // complete
  std::vector<std::string> incomplete_;  // cut short by the budget
  std::vector<std::string> hashed_;
  std::map<std::string, std::optional<std::string>> resolved_parents_;
};

// Whether path is root or lies below it (lexically; both absolute and normal).
bool path_within(const std::string& path, const std::string& root);
std::string join_path(const std::string& dir, const std::string& name);
std::string parent_path(const std::string& path);
std::string base_name(const std::string& path);
// Absolute and lexically normal ("//a/./b/" -> "/a/b"); nullopt for a relative path or one with
// "..", which nothing here needs and a guest could use to wander.
std::optional<std::string> normal_path(const std::string& path);

}  // namespace palisade::hypervisor::inspect

// compare(): what changed between two inventories of one VM. Each part is compared by its own
// identity (a user by name, a key by account, file, fingerprint and options, a cron job by all it
// says, ...). Every change of meaning names the guest files that explain it; the file baseline is
// compared last and leaves those files out, so that one planted change reads as one change.
#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "inspect/inventory_json.h"
#include "palisade/hypervisor/guest_inspection.h"

namespace palisade::hypervisor {
namespace {

using inspect::json_of;

constexpr const char* kOsReleaseFiles[] = {"/etc/os-release",     "/usr/lib/os-release",
                                           "/etc/debian_version", "/etc/redhat-release",
                                           "/etc/system-release", "/etc/lsb-release"};

class Changes {
 public:
  // A change of meaning, seen in `explained` guest files (left out of the file comparison).
  void add(std::string kind, std::string subject, std::string path, std::string detail,
           nlohmann::json before, nlohmann::json after,
           const std::vector<std::string>& explained = {}) {
    if (!path.empty()) explained_.insert(path);
    explained_.insert(explained.begin(), explained.end());
    group_.push_back(GuestChange{std::move(kind), std::move(subject), std::move(path),
                                 std::move(detail), std::move(before), std::move(after)});
  }
  // Groups keep the documented order; inside one, changes sort by subject, then kind.
  void end_group() {
    std::stable_sort(group_.begin(), group_.end(), [](const GuestChange& a, const GuestChange& b) {
      return std::tie(a.subject, a.kind) < std::tie(b.subject, b.kind);
    });
    for (GuestChange& c : group_) out_.push_back(std::move(c));
    group_.clear();
  }
  bool explained(const std::string& path) const { return explained_.count(path) > 0; }
  std::vector<GuestChange> take() { return std::move(out_); }

 private:
  std::vector<GuestChange> group_;
  std::vector<GuestChange> out_;
  std::set<std::string> explained_;
};

// Items keyed for comparison. A key seen again gets an occurrence number, so that duplicates
// (two identical cron lines, two "root" lines in passwd) are counted, not merged.
template <typename T, typename Key>
std::map<std::pair<Key, int>, const T*> keyed(const std::vector<T>& items, Key (*key)(const T&)) {
  std::map<std::pair<Key, int>, const T*> out;
  std::map<Key, int> seen;
  for (const T& item : items) {
    Key k = key(item);
    const int n = seen[k]++;
    out.emplace(std::make_pair(std::move(k), n), &item);
  }
  return out;
}

// Calls added, removed and both over two keyed collections.
template <typename Map, typename Added, typename Removed, typename Both>
void walk_pairs(const Map& before, const Map& after, Added added, Removed removed, Both both) {
  for (const auto& [key, item] : after) {
    auto it = before.find(key);
    if (it == before.end()) {
      added(*item);
    } else {
      both(*it->second, *item);
    }
  }
  for (const auto& [key, item] : before) {
    if (after.find(key) == after.end()) removed(*item);
  }
}

template <typename T>
void nothing(const T&, const T&) {}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::vector<std::string> minus(const std::vector<std::string>& a,
                               const std::vector<std::string>& b) {
  std::vector<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::string user_summary(const GuestUser& u) {
  std::string out = "uid " + std::to_string(u.uid) + " gid " + std::to_string(u.gid) + " home " +
                    u.home + " shell " + u.shell;
  if (u.uid == 0) out += " (uid 0: root's rights)";
  return out;
}

void compare_os(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  std::vector<std::string> parts;
  std::vector<std::string> explained;
  const auto field = [&](const char* name, const std::string& x, const std::string& y) {
    if (x != y) parts.push_back(std::string(name) + " " + x + " -> " + y);
  };
  field("type", a.os_type, b.os_type);
  field("distro", a.distro, b.distro);
  field("product", a.product_name, b.product_name);
  field("version", std::to_string(a.major_version) + "." + std::to_string(a.minor_version),
        std::to_string(b.major_version) + "." + std::to_string(b.minor_version));
  if (!parts.empty()) explained.assign(std::begin(kOsReleaseFiles), std::end(kOsReleaseFiles));
  field("hostname", a.hostname, b.hostname);
  if (a.hostname != b.hostname) explained.emplace_back("/etc/hostname");
  if (parts.empty()) return;
  const auto os = [](const GuestInventory& i) {
    return nlohmann::json{{"type", i.os_type},
                          {"distro", i.distro},
                          {"product_name", i.product_name},
                          {"major_version", i.major_version},
                          {"minor_version", i.minor_version},
                          {"hostname", i.hostname}};
  };
  changes.add("os-changed", b.product_name, "", joined(parts), os(a), os(b), explained);
}

std::string user_key(const GuestUser& u) {
  return u.name;
}

void compare_users(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  const std::string passwd = "/etc/passwd";
  walk_pairs(
      keyed(a.users, user_key), keyed(b.users, user_key),
      [&](const GuestUser& u) {
        changes.add("user-added", u.name, passwd, user_summary(u), nullptr, json_of(u));
      },
      [&](const GuestUser& u) {
        changes.add("user-removed", u.name, passwd, user_summary(u), json_of(u), nullptr);
      },
      [&](const GuestUser& x, const GuestUser& y) {
        if (x == y) return;
        std::vector<std::string> parts;
        if (x.uid != y.uid) {
          parts.push_back("uid " + std::to_string(x.uid) + " -> " + std::to_string(y.uid) +
                          (y.uid == 0 ? " (root's rights)" : ""));
        }
        if (x.gid != y.gid) {
          parts.push_back("gid " + std::to_string(x.gid) + " -> " + std::to_string(y.gid));
        }
        if (x.home != y.home) parts.push_back("home " + x.home + " -> " + y.home);
        if (x.shell != y.shell) parts.push_back("shell " + x.shell + " -> " + y.shell);
        changes.add("user-modified", y.name, passwd, joined(parts), json_of(x), json_of(y));
      });
}

std::string group_key(const GuestGroup& g) {
  return g.name;
}

void compare_groups(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  const std::string group = "/etc/group";
  const auto summary = [](const GuestGroup& g) {
    return "gid " + std::to_string(g.gid) + " members " + joined(g.members);
  };
  walk_pairs(
      keyed(a.groups, group_key), keyed(b.groups, group_key),
      [&](const GuestGroup& g) {
        changes.add("group-added", g.name, group, summary(g), nullptr, json_of(g));
      },
      [&](const GuestGroup& g) {
        changes.add("group-removed", g.name, group, summary(g), json_of(g), nullptr);
      },
      [&](const GuestGroup& x, const GuestGroup& y) {
        if (x.gid != y.gid) {
          changes.add("group-modified", y.name, group,
                      "gid " + std::to_string(x.gid) + " -> " + std::to_string(y.gid), json_of(x),
                      json_of(y));
        }
        if (x.members != y.members) {
          std::string detail;
          for (const std::string& m : minus(y.members, x.members)) detail += " +" + m;
          for (const std::string& m : minus(x.members, y.members)) detail += " -" + m;
          changes.add("group-members-changed", y.name, group, "members" + detail, json_of(x),
                      json_of(y));
        }
      });
}

std::string line_key(const std::string& line) {
  return line;
}

void compare_sudoers(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  // Lines read "FILE: RULE".
  const auto file_of = [](const std::string& line) { return line.substr(0, line.find(": ")); };
  walk_pairs(
      keyed(a.sudoers, line_key), keyed(b.sudoers, line_key),
      [&](const std::string& line) {
        changes.add("sudoers-added", line, file_of(line), line, nullptr, line);
      },
      [&](const std::string& line) {
        changes.add("sudoers-removed", line, file_of(line), line, line, nullptr);
      },
      nothing<std::string>);
}

std::tuple<std::string, std::string, std::string, std::string, std::string> key_key(
    const SshKey& k) {
  return {k.user, k.file, k.fingerprint, k.type, k.options};
}

void compare_keys(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  const auto subject = [](const SshKey& k) { return k.user + " " + k.fingerprint; };
  const auto detail = [](const SshKey& k) {
    std::string out = k.type + " " + k.fingerprint + " " + k.comment + " opens " + k.user;
    if (!k.options.empty()) out += " (options " + k.options + ")";
    return out;
  };
  walk_pairs(
      keyed(a.authorized_keys, key_key), keyed(b.authorized_keys, key_key),
      [&](const SshKey& k) {
        changes.add("authorized-key-added", subject(k), k.file, detail(k), nullptr, json_of(k));
      },
      [&](const SshKey& k) {
        changes.add("authorized-key-removed", subject(k), k.file, detail(k), json_of(k), nullptr);
      },
      nothing<SshKey>);
}

std::tuple<std::string, std::string, std::string, std::string> cron_key(const CronEntry& e) {
  return {e.file, e.user, e.schedule, e.command};
}

void compare_cron(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  const auto subject = [](const CronEntry& e) { return e.schedule + " " + e.command; };
  const auto detail = [](const CronEntry& e) {
    return e.schedule + " as " + e.user + ": " + e.command;
  };
  walk_pairs(
      keyed(a.cron, cron_key), keyed(b.cron, cron_key),
      [&](const CronEntry& e) {
        changes.add("cron-added", subject(e), e.file, detail(e), nullptr, json_of(e));
      },
      [&](const CronEntry& e) {
        changes.add("cron-removed", subject(e), e.file, detail(e), json_of(e), nullptr);
      },
      nothing<CronEntry>);
}

std::string unit_key(const SystemdUnit& u) {
  return u.path;
}

void compare_units(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  const auto state = [](const SystemdUnit& u) {
    std::string out = u.link_target.empty() ? "sha256 " + u.sha256 : "-> " + u.link_target;
    if (u.enabled) out += ", enabled by " + joined(u.wanted_by);
    return out;
  };
  walk_pairs(
      keyed(a.units, unit_key), keyed(b.units, unit_key),
      [&](const SystemdUnit& u) {
        changes.add("unit-added", u.path, u.path, state(u), nullptr, json_of(u), u.wanted_by);
      },
      [&](const SystemdUnit& u) {
        changes.add("unit-removed", u.path, u.path, state(u), json_of(u), nullptr, u.wanted_by);
      },
      [&](const SystemdUnit& x, const SystemdUnit& y) {
        if (x.sha256 != y.sha256 || x.link_target != y.link_target) {
          const std::string what = x.link_target != y.link_target
                                       ? "target " + x.link_target + " -> " + y.link_target
                                       : "content sha256 " + x.sha256 + " -> " + y.sha256;
          changes.add("unit-modified", y.path, y.path, what, json_of(x), json_of(y));
        }
        const std::vector<std::string> linked = minus(y.wanted_by, x.wanted_by);
        const std::vector<std::string> unlinked = minus(x.wanted_by, y.wanted_by);
        if (!linked.empty()) {
          changes.add("unit-enabled", y.path, linked.front(), "started by " + joined(linked),
                      json_of(x), json_of(y), linked);
        }
        if (!unlinked.empty()) {
          changes.add("unit-disabled", y.path, unlinked.front(),
                      "no longer started by " + joined(unlinked), json_of(x), json_of(y), unlinked);
        }
      });
}

// What the node agent's FIM compares: type, mode, owner, link target and content (by SHA-256,
// when both sides have one). Times, size and inode are not compared: an offline image rebuilt or
// restored from a snapshot renumbers inodes and restamps ctime, and a touched file is no change.
uint32_t differences(const fim::FileRecord& x, const fim::FileRecord& y) {
  if (x.type != y.type) return fim::kChangedType;
  uint32_t changed = 0;
  if (x.mode != y.mode) changed |= fim::kChangedMode;
  if (x.uid != y.uid || x.gid != y.gid) changed |= fim::kChangedOwner;
  if (x.type == fim::FileType::kSymlink && x.link_target != y.link_target) {
    changed |= fim::kChangedTarget;
  }
  if (x.type == fim::FileType::kFile && !x.sha256.empty() && !y.sha256.empty() &&
      x.sha256 != y.sha256) {
    changed |= fim::kChangedContent;
  }
  return changed;
}

std::string describe(const fim::FileRecord* x, const fim::FileRecord* y, uint32_t changed) {
  fim::FileChange change;
  change.path = y != nullptr ? y->path : x->path;
  change.kind = x == nullptr   ? fim::ChangeKind::kAdded
                : y == nullptr ? fim::ChangeKind::kRemoved
                               : fim::ChangeKind::kModified;
  change.changed = changed;
  if (x != nullptr) change.before = *x;
  if (y != nullptr) change.after = *y;
  return fim::describe(change);
}

nlohmann::json json_or_null(const fim::FileRecord* r) {
  return r == nullptr ? nlohmann::json(nullptr) : json_of(*r);
}

std::string record_key(const fim::FileRecord& r) {
  return r.path;
}

void compare_setid(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  const auto add = [&](const char* kind, const fim::FileRecord* x, const fim::FileRecord* y,
                       uint32_t changed) {
    const std::string& path = y != nullptr ? y->path : x->path;
    changes.add(kind, path, path, describe(x, y, changed), json_or_null(x), json_or_null(y));
  };
  walk_pairs(
      keyed(a.setid_files, record_key), keyed(b.setid_files, record_key),
      [&](const fim::FileRecord& r) { add("setid-added", nullptr, &r, 0); },
      [&](const fim::FileRecord& r) {
        // Gone, or only its setuid/setgid bits: either way it no longer runs with other rights.
        add("setid-removed", &r, nullptr, 0);
      },
      [&](const fim::FileRecord& x, const fim::FileRecord& y) {
        if (const uint32_t changed = differences(x, y); changed != 0) {
          add("setid-modified", &x, &y, changed);
        }
      });
}

void compare_packages(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  using Key = std::pair<std::string, std::string>;
  const auto key = +[](const Package& p) { return Key{p.name, p.arch}; };
  const auto subject = [](const Package& p) {
    return p.arch.empty() ? p.name : p.name + ":" + p.arch;
  };
  walk_pairs(
      keyed<Package, Key>(a.packages, key), keyed<Package, Key>(b.packages, key),
      [&](const Package& p) {
        changes.add("package-added", subject(p), "", p.version, nullptr, json_of(p));
      },
      [&](const Package& p) {
        changes.add("package-removed", subject(p), "", p.version, json_of(p), nullptr);
      },
      [&](const Package& x, const Package& y) {
        if (x.version != y.version) {
          changes.add("package-changed", subject(y), "", x.version + " -> " + y.version, json_of(x),
                      json_of(y));
        }
      });
}

void compare_files(const GuestInventory& a, const GuestInventory& b, Changes& changes) {
  // A tree cut short on either side cannot tell an added or removed entry from one past the cut.
  std::vector<std::string> partial = a.incomplete_roots;
  partial.insert(partial.end(), b.incomplete_roots.begin(), b.incomplete_roots.end());
  const auto in_partial = [&](const std::string& path) {
    return std::any_of(partial.begin(), partial.end(), [&](const std::string& root) {
      return root == "/" || path == root || path.rfind(root + "/", 0) == 0;
    });
  };
  const auto add = [&](const char* kind, const fim::FileRecord* x, const fim::FileRecord* y,
                       uint32_t changed) {
    const std::string& path = y != nullptr ? y->path : x->path;
    if (changes.explained(path)) return;
    changes.add(kind, path, path, describe(x, y, changed), json_or_null(x), json_or_null(y));
  };
  walk_pairs(
      keyed(a.files, record_key), keyed(b.files, record_key),
      [&](const fim::FileRecord& r) {
        if (!in_partial(r.path)) add("file-added", nullptr, &r, 0);
      },
      [&](const fim::FileRecord& r) {
        if (!in_partial(r.path)) add("file-removed", &r, nullptr, 0);
      },
      [&](const fim::FileRecord& x, const fim::FileRecord& y) {
        if (const uint32_t changed = differences(x, y); changed != 0) {
          add("file-modified", &x, &y, changed);
        }
      });
}

}  // namespace

std::vector<GuestChange> compare(const GuestInventory& before, const GuestInventory& after) {
  Changes changes;
  for (auto* part : {compare_os, compare_users, compare_groups, compare_sudoers, compare_keys,
                     compare_cron, compare_units, compare_setid, compare_packages, compare_files}) {
    part(before, after, changes);
    changes.end_group();
  }
  return changes.take();
}

}  // namespace palisade::hypervisor

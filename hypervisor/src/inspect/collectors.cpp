#include "inspect/collectors.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <tuple>

#include "inspect/config_parsers.h"
#include "inspect/ssh_keys.h"

namespace palisade::hypervisor::inspect {
namespace {

constexpr uint64_t kMaxPackageDatabaseBytes = 64ULL << 20;
// SUID/SGID files outside the baseline's trees are hashed one call each; past this many the rest
// are recorded without a hash (and said so), whatever a guest plants.
constexpr size_t kMaxSetidHashes = 1000;

constexpr const char* kCronPeriods[][2] = {{"/etc/cron.hourly", "@hourly"},
                                           {"/etc/cron.daily", "@daily"},
                                           {"/etc/cron.weekly", "@weekly"},
                                           {"/etc/cron.monthly", "@monthly"}};

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_unit_name(const std::string& name) {
  for (const std::string_view suffix :
       {".service", ".socket", ".timer", ".path", ".target", ".mount", ".automount", ".swap",
        ".slice", ".scope", ".device"}) {
    if (ends_with(name, suffix) && name.size() > suffix.size()) return true;
  }
  return false;
}

// "getty@tty1.service" is pulled in as an instance of "getty@.service".
std::string template_of(const std::string& name) {
  const size_t at = name.find('@');
  const size_t dot = name.rfind('.');
  if (at == std::string::npos || dot == std::string::npos || dot <= at + 1) return {};
  return name.substr(0, at + 1) + name.substr(dot);
}

fim::FileType file_type(uint32_t mode) {
  if (S_ISREG(mode)) return fim::FileType::kFile;
  if (S_ISDIR(mode)) return fim::FileType::kDirectory;
  if (S_ISLNK(mode)) return fim::FileType::kSymlink;
  return fim::FileType::kOther;
}

std::string package_version(const GuestApplication& a) {
  std::string out = a.epoch > 0 ? std::to_string(a.epoch) + ":" : "";
  out += a.version;
  if (!a.release.empty()) out += "-" + a.release;
  return out;
}

}  // namespace

fim::FileRecord file_record(const std::string& path, const TreeEntry& entry) {
  fim::FileRecord r;
  r.path = path;
  r.type = file_type(entry.stat.mode);
  r.mode = entry.stat.mode & 07777U;
  r.uid = entry.stat.uid;
  r.gid = entry.stat.gid;
  r.size = entry.stat.size;
  r.mtime_ns = entry.stat.mtime_ns;
  r.ctime_ns = entry.stat.ctime_ns;
  r.inode = entry.stat.inode;
  r.sha256 = entry.sha256;
  r.link_target = entry.link_target;
  return r;
}

const std::vector<std::string>& Collectors::directories() {
  static const std::vector<std::string> dirs = [] {
    std::vector<std::string> out = {"/etc/sudoers.d", "/etc/cron.d", "/var/spool/cron"};
    for (const auto& period : kCronPeriods) out.emplace_back(period[0]);
    for (const std::string& dir : unit_directories()) out.push_back(dir);
    return out;
  }();
  return dirs;
}

const std::vector<std::string>& Collectors::unit_directories() {
  // systemd's search path for system and user units, highest priority first.
  static const std::vector<std::string> dirs = {
      "/etc/systemd/system",  "/etc/systemd/user",       "/usr/local/lib/systemd/system",
      "/lib/systemd/system",  "/usr/lib/systemd/system", "/lib/systemd/user",
      "/usr/lib/systemd/user"};
  return dirs;
}

std::optional<std::string> Collectors::read_text(const std::string& path, uint64_t max_bytes) {
  check_deadline_();
  try {
    std::optional<GuestStat> st = tree_.lstat(path);
    if (st && S_ISLNK(st->mode)) st = guest_.stat(path);  // the link's target, inside the guest
    if (!st) return std::nullopt;
    if (!S_ISREG(st->mode)) {
      warnings_.add(path + ": not a regular file; not read");
      return std::nullopt;
    }
    bool truncated = false;
    std::string text = guest_.read_prefix(path, max_bytes, truncated);
    if (truncated) {
      warnings_.add(path + ": larger than " + std::to_string(max_bytes) +
                    " bytes; only the beginning was read");
      // A cut line would read as something it is not: end at the last whole line.
      text.resize(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);
    }
    return text;
  } catch (const GuestfsError& e) {
    check_deadline_();
    if (e.error_number() == ENOENT || e.error_number() == ENOTDIR) return std::nullopt;
    warnings_.add(path + ": cannot read: " + e.what());
    return std::nullopt;
  }
}

std::vector<std::string> Collectors::files_in(const std::string& dir) {
  std::vector<std::string> out;
  const std::optional<std::string> real = tree_.resolve(dir);
  if (!real) return out;
  auto [begin, end] = tree_.under(*real);
  for (auto it = begin; it != end; ++it) {
    const bool direct = parent_path(it->first) == *real;
    const uint32_t mode = it->second.stat.mode;
    if (direct && (S_ISREG(mode) || S_ISLNK(mode))) out.push_back(it->first);
  }
  return out;
}

void Collectors::warn_malformed(const std::string& path, size_t malformed, const char* what) {
  if (malformed > 0) {
    warnings_.add(path + ": " + std::to_string(malformed) + " lines are not " + what + "; skipped");
  }
}

void Collectors::accounts(GuestInventory& inventory) {
  size_t malformed = 0;
  if (const auto text = read_text("/etc/passwd")) {
    inventory.users = parse_passwd(*text, malformed);
    warn_malformed("/etc/passwd", malformed, "accounts");
  } else {
    warnings_.add("/etc/passwd: missing or unreadable; no users recorded");
  }
  malformed = 0;
  if (const auto text = read_text("/etc/group")) {
    inventory.groups = parse_group(*text, malformed);
    warn_malformed("/etc/group", malformed, "groups");
  }
}

void Collectors::sudoers(GuestInventory& inventory) {
  std::vector<std::string> files = {"/etc/sudoers"};
  // sudo itself skips names that end in '~' or hold a '.' (editor and package leftovers).
  for (const std::string& path : files_in("/etc/sudoers.d")) {
    const std::string name = base_name(path);
    if (!ends_with(name, "~") && name.find('.') == std::string::npos) files.push_back(path);
  }
  for (const std::string& path : files) {
    const auto text = read_text(path);
    if (!text) continue;
    for (const std::string& line : sudoers_lines(*text)) {
      inventory.sudoers.push_back(path);
      inventory.sudoers.back().append(": ").append(line);
    }
  }
}

void Collectors::authorized_keys(GuestInventory& inventory) {
  std::vector<std::string> patterns = {".ssh/authorized_keys", ".ssh/authorized_keys2"};
  if (const auto config = read_text("/etc/ssh/sshd_config")) {
    patterns = authorized_keys_patterns(*config);
  }
  std::vector<GuestUser> accounts = inventory.users;
  const bool has_root = std::any_of(accounts.begin(), accounts.end(),
                                    [](const GuestUser& u) { return u.name == "root"; });
  if (!has_root) accounts.push_back({"root", 0, 0, "/root", ""});
  // Accounts sharing a home share its keys: each file is read once, its keys listed for each.
  std::map<std::string, std::optional<std::string>> read;
  for (const GuestUser& user : accounts) {
    if (!normal_path(user.home)) continue;  // relative or with "..": nothing sshd would use
    for (const std::string& pattern : patterns) {
      const std::optional<std::string> path = normal_path(expand_keys_pattern(pattern, user));
      if (!path) continue;
      auto [it, inserted] = read.try_emplace(*path);
      if (inserted) it->second = read_text(*path);
      if (!it->second) continue;
      size_t malformed = 0;
      for (SshKey& key : parse_authorized_keys(*it->second, user.name, *path, malformed)) {
        inventory.authorized_keys.push_back(std::move(key));
      }
      warn_malformed(*path, malformed, "keys");
    }
  }
}

void Collectors::cron(GuestInventory& inventory) {
  const auto add = [&](const std::string& path, const std::string& user, bool system_format) {
    const auto text = read_text(path);
    if (!text) return;
    size_t malformed = 0;
    for (CronEntry& e : parse_crontab(*text, path, user, system_format, malformed)) {
      inventory.cron.push_back(std::move(e));
    }
    warn_malformed(path, malformed, "cron jobs");
  };
  add("/etc/crontab", "", true);
  for (const std::string& path : files_in("/etc/cron.d")) add(path, "", true);
  // Debian keeps users' crontabs in crontabs/, cronie directly in the spool directory.
  for (const std::string& path : files_in("/var/spool/cron/crontabs")) {
    add(path, base_name(path), false);
  }
  for (const std::string& path : files_in("/var/spool/cron")) add(path, base_name(path), false);
  for (const auto& [dir, schedule] : kCronPeriods) {
    for (const std::string& path : files_in(dir)) {
      if (base_name(path)[0] == '.') continue;  // placeholders, never run
      inventory.cron.push_back({path, "root", schedule, path});
    }
  }
}

void Collectors::units(GuestInventory& inventory) {
  std::vector<std::string> dirs;
  for (const std::string& dir : unit_directories()) {
    const std::optional<std::string> real = tree_.resolve(dir);
    if (real && std::find(dirs.begin(), dirs.end(), *real) == dirs.end()) dirs.push_back(*real);
  }
  std::map<std::string, std::vector<std::string>> wanted_by;  // unit name -> links
  for (const std::string& dir : dirs) {
    auto [begin, end] = tree_.under(dir);
    for (auto it = begin; it != end; ++it) {
      const std::string& path = it->first;
      const std::string parent = parent_path(path);
      const std::string name = base_name(path);
      const uint32_t mode = it->second.stat.mode;
      if (!S_ISREG(mode) && !S_ISLNK(mode)) continue;
      SystemdUnit unit{path, it->second.sha256, it->second.link_target, false, {}};
      if (parent == dir && is_unit_name(name)) {
        inventory.units.push_back(std::move(unit));
      } else if (parent_path(parent) == dir) {
        const std::string holder = base_name(parent);
        if (ends_with(holder, ".wants") || ends_with(holder, ".requires") ||
            ends_with(holder, ".upholds")) {
          wanted_by[name].push_back(path);
        } else if (ends_with(holder, ".d") && ends_with(name, ".conf")) {
          inventory.units.push_back(std::move(unit));  // a drop-in, which changes a unit
        }
      }
    }
  }
  for (SystemdUnit& unit : inventory.units) {
    const std::string name = base_name(unit.path);
    if (ends_with(parent_path(unit.path), ".d")) continue;
    for (const auto& [wanted, links] : wanted_by) {
      if (wanted == name || template_of(wanted) == name) {
        unit.wanted_by.insert(unit.wanted_by.end(), links.begin(), links.end());
      }
    }
    std::sort(unit.wanted_by.begin(), unit.wanted_by.end());
    unit.enabled = !unit.wanted_by.empty();
  }
}

void Collectors::packages(const std::string& root, GuestInventory& inventory) {
  check_deadline_();
  try {
    for (const GuestApplication& a : guest_.inspect_applications(root)) {
      inventory.packages.push_back({a.name, package_version(a), a.arch});
    }
  } catch (const GuestfsError& e) {
    check_deadline_();
    warnings_.add(std::string("installed applications: ") + e.what() +
                  "; reading /var/lib/dpkg/status instead");
    if (const auto text = read_text("/var/lib/dpkg/status", kMaxPackageDatabaseBytes)) {
      inventory.packages = parse_dpkg_status(*text);
    }
  }
  const auto key = [](const Package& p) { return std::tie(p.name, p.arch, p.version); };
  std::sort(inventory.packages.begin(), inventory.packages.end(),
            [&](const Package& a, const Package& b) { return key(a) < key(b); });
  inventory.packages.erase(std::unique(inventory.packages.begin(), inventory.packages.end()),
                           inventory.packages.end());
}

void Collectors::setid_files(const std::vector<std::string>& roots, GuestInventory& inventory) {
  std::set<std::string> paths;
  for (const std::string& root : roots) {
    if (const TreeEntry* top = tree_.find(root)) {
      if (S_ISREG(top->stat.mode) && (top->stat.mode & (S_ISUID | S_ISGID)) != 0) {
        paths.insert(root);
      }
    }
    auto [begin, end] = tree_.under(root);
    for (auto it = begin; it != end; ++it) {
      const uint32_t mode = it->second.stat.mode;
      if (S_ISREG(mode) && (mode & (S_ISUID | S_ISGID)) != 0) paths.insert(it->first);
    }
  }
  size_t hashed = 0;
  size_t unhashed = 0;
  for (const std::string& path : paths) {
    const TreeEntry* entry = tree_.find(path);
    if (entry->sha256.empty()) {
      if (hashed < kMaxSetidHashes) {
        check_deadline_();
        tree_.hash_file(path);
        ++hashed;
      } else {
        ++unhashed;
      }
    }
    inventory.setid_files.push_back(file_record(path, *entry));
  }
  if (unhashed > 0) {
    warnings_.add(std::to_string(unhashed) + " setuid/setgid files beyond the first " +
                  std::to_string(kMaxSetidHashes) + " were not hashed");
  }
}

void Collectors::files(const std::vector<std::string>& roots, GuestInventory& inventory) {
  // Nested roots ("/usr" and "/usr/bin") are listed once, under the outer one.
  std::vector<std::string> sorted = roots;
  std::sort(sorted.begin(), sorted.end());  // an outer root sorts before what it holds
  std::vector<std::string> outer;
  for (const std::string& root : sorted) {
    const auto holds = [&](const std::string& kept) { return path_within(root, kept); };
    if (std::none_of(outer.begin(), outer.end(), holds)) outer.push_back(root);
  }
  for (const std::string& root : outer) {
    if (const TreeEntry* top = tree_.find(root)) {
      inventory.files.push_back(file_record(root, *top));
    }
    auto [begin, end] = tree_.under(root);
    for (auto it = begin; it != end; ++it) {
      inventory.files.push_back(file_record(it->first, it->second));
    }
  }
  std::sort(inventory.files.begin(), inventory.files.end(),
            [](const fim::FileRecord& a, const fim::FileRecord& b) { return a.path < b.path; });
}

}  // namespace palisade::hypervisor::inspect

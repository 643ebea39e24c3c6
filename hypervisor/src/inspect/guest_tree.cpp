#include "inspect/guest_tree.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

namespace palisade::hypervisor::inspect {
namespace {

constexpr size_t kSha256Hex = 64;

// sha256sum writes a name holding a newline or a backslash with those escaped and the line
// prefixed by a backslash.
std::string unescape_sum_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '\\' || i + 1 == name.size()) {
      out.push_back(name[i]);
      continue;
    }
    const char next = name[++i];
    out.push_back(next == 'n' ? '\n' : next == 'r' ? '\r' : next);
  }
  return out;
}

bool is_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

bool path_within(const std::string& path, const std::string& root) {
  if (root == "/") return !path.empty() && path[0] == '/';
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

std::string join_path(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string parent_path(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::optional<std::string> normal_path(const std::string& path) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const size_t end = std::min(path.find('/', i), path.size());
    const std::string_view part(path.data() + i, end - i);
    if (part == "..") return std::nullopt;
    if (!part.empty() && part != ".") {
      out.push_back('/');
      out.append(part);
    }
    i = end;
  }
  return out.empty() ? "/" : out;
}

std::optional<std::string> GuestTree::resolve(const std::string& root) {
  std::optional<std::string> normal = normal_path(root);
  if (!normal) return std::nullopt;
  if (*normal == "/") return normal;
  const std::string parent = parent_path(*normal);
  auto [it, inserted] = resolved_parents_.try_emplace(parent);
  if (inserted) {
    if (parent == "/") {
      it->second = "/";
    } else {
      try {
        it->second = guest_.realpath(parent);
      } catch (const GuestfsError& e) {
        if (e.error_number() != ENOENT && e.error_number() != ENOTDIR) throw;
      }
    }
  }
  if (!it->second) return std::nullopt;
  return join_path(*it->second, base_name(*normal));
}

void GuestTree::walk(const std::vector<std::string>& roots, bool warn_missing) {
  std::vector<std::string> sorted = roots;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (const std::string& root : sorted) {
    const auto covered = [&](const std::string& r) { return path_within(root, r); };
    if (std::any_of(walked_.begin(), walked_.end(), covered) ||
        std::any_of(incomplete_.begin(), incomplete_.end(), covered)) {
      continue;
    }
    walk_one(root, warn_missing);
  }
}

void GuestTree::walk_one(const std::string& root, bool warn_missing) {
  std::optional<GuestStat> top;
  try {
    top = root == "/" ? guest_.lstat("/") : guest_.lstat(root);
  } catch (const GuestfsError& e) {
    if (e.error_number() != ENOTDIR) throw;  // a parent that is not a directory: no such root
  }
  if (!top) {
    if (warn_missing) warnings_.add(root + ": not found in the guest");
    return;
  }
  if (budget_ == 0) {
    warnings_.add(root + ": not walked: the file limit was reached");
    incomplete_.push_back(root);
    return;
  }
  --budget_;
  TreeEntry& entry = entries_[root];
  entry.stat = *top;
  if (S_ISLNK(top->mode)) {
    std::vector<std::string> name = {base_name(root)};
    entry.link_target = guest_.readlink_many(parent_path(root), name).front();
  }
  if (!S_ISDIR(top->mode)) {
    walked_.push_back(root);
    return;
  }
  // Names arrive in traversal order; a directory's entries are gathered to stat them together.
  std::map<std::string, std::vector<std::string>> by_directory;
  uint64_t beyond = 0;
  guest_.find0(root, [&](std::string_view relative) {
    if (budget_ == 0) {
      ++beyond;
      return;
    }
    --budget_;
    const std::string path = join_path(root, std::string(relative));
    by_directory[parent_path(path)].push_back(base_name(path));
  });
  for (auto& [dir, names] : by_directory) stat_directory(dir, names);
  if (beyond > 0) {
    warnings_.add(root + ": file limit reached; " + std::to_string(beyond) +
                  " entries not recorded");
    incomplete_.push_back(root);
  } else {
    walked_.push_back(root);
  }
}

void GuestTree::stat_directory(const std::string& dir, std::vector<std::string>& names) {
  const std::vector<std::optional<GuestStat>> stats = guest_.lstat_many(dir, names);
  std::vector<std::string> links;
  for (size_t i = 0; i < names.size(); ++i) {
    if (!stats[i]) {
      warnings_.add(join_path(dir, names[i]) + ": listed but cannot be examined");
      continue;
    }
    entries_[join_path(dir, names[i])].stat = *stats[i];
    if (S_ISLNK(stats[i]->mode)) links.push_back(names[i]);
  }
  if (links.empty()) return;
  const std::vector<std::string> targets = guest_.readlink_many(dir, links);
  for (size_t i = 0; i < links.size(); ++i) {
    entries_[join_path(dir, links[i])].link_target = targets[i];
  }
}

void GuestTree::hash(const std::vector<std::string>& roots) {
  std::vector<std::string> sorted = roots;
  std::sort(sorted.begin(), sorted.end());
  for (const std::string& root : sorted) {
    const auto covered = [&](const std::string& r) { return path_within(root, r); };
    if (std::any_of(hashed_.begin(), hashed_.end(), covered)) continue;
    const TreeEntry* top = find(root);
    if (top == nullptr) continue;
    if (S_ISREG(top->stat.mode)) {
      hash_file(root);
    } else if (S_ISDIR(top->stat.mode)) {
      guest_.checksums_sha256(root,
                              [&](std::string_view line) { apply_checksum_line(root, line); });
      hashed_.push_back(root);
    }
  }
  // Every regular file of a hashed tree should have its checksum now; say which do not.
  for (const std::string& root : hashed_) {
    auto [begin, end] = under(root);
    for (auto it = begin; it != end; ++it) {
      if (S_ISREG(it->second.stat.mode) && it->second.sha256.empty()) {
        warnings_.add(it->first + ": content could not be hashed");
      }
    }
  }
}

void GuestTree::apply_checksum_line(const std::string& root, std::string_view line) {
  const bool escaped = !line.empty() && line[0] == '\\';
  if (escaped) line.remove_prefix(1);
  // "HEX  ./name" (or "HEX *./name" in binary mode)
  if (line.size() < kSha256Hex + 4 || !is_hex(line.substr(0, kSha256Hex)) ||
      line.substr(kSha256Hex + 2, 2) != "./") {
    return;
  }
  std::string_view name = line.substr(kSha256Hex + 4);
  const std::string relative = escaped ? unescape_sum_name(name) : std::string(name);
  auto it = entries_.find(join_path(root, relative));
  if (it != entries_.end() && S_ISREG(it->second.stat.mode)) {
    it->second.sha256 = std::string(line.substr(0, kSha256Hex));
  }
}

void GuestTree::hash_file(const std::string& path) {
  auto it = entries_.find(path);
  if (it == entries_.end() || !S_ISREG(it->second.stat.mode) || !it->second.sha256.empty()) return;
  try {
    it->second.sha256 = guest_.sha256(path);
  } catch (const GuestfsError& e) {
    warnings_.add(path + ": content could not be hashed: " + e.what());
  }
}

const TreeEntry* GuestTree::find(const std::string& path) const {
  auto it = entries_.find(path);
  return it == entries_.end() ? nullptr : &it->second;
}

bool GuestTree::known_absent(const std::string& path) const {
  const bool walked = std::any_of(walked_.begin(), walked_.end(),
                                  [&](const std::string& root) { return path_within(path, root); });
  if (!walked) return false;
  for (std::string up = parent_path(path);; up = parent_path(up)) {
    if (const TreeEntry* ancestor = find(up)) return !S_ISLNK(ancestor->stat.mode);
    if (up == "/") return false;
  }
}

std::optional<GuestStat> GuestTree::lstat(const std::string& path) {
  if (const TreeEntry* entry = find(path)) return entry->stat;
  if (known_absent(path)) return std::nullopt;
  return guest_.lstat(path);
}

std::pair<GuestTree::Entries::const_iterator, GuestTree::Entries::const_iterator> GuestTree::under(
    const std::string& dir) const {
  // The paths below dir are exactly those from "dir/" up to "dir0" ('0' follows '/').
  const std::string prefix = dir == "/" ? "/" : dir + "/";
  std::string limit = prefix;
  limit.back() = '0';
  return {dir == "/" ? entries_.upper_bound("/") : entries_.lower_bound(prefix),
          entries_.lower_bound(limit)};
}

}  // namespace palisade::hypervisor::inspect

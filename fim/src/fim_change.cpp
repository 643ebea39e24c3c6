// How a change reads: one line for people, one JSON object for machines.
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "palisade/fim/fim.h"

namespace palisade::fim {
namespace {

std::string octal(uint32_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", mode & 07777U);
  return text;
}

std::string owner(const FileRecord& r) {
  return std::to_string(r.uid) + ":" + std::to_string(r.gid);
}

// Gaining setuid or setgid is what an attacker who wants root back does: say it outright.
std::string special_bits_added(uint32_t before, uint32_t now) {
  std::string out;
  if ((now & S_ISUID) != 0 && (before & S_ISUID) == 0) out += " (setuid added)";
  if ((now & S_ISGID) != 0 && (before & S_ISGID) == 0) out += " (setgid added)";
  return out;
}

std::string summary(const FileRecord& r) {
  std::string out = std::string(to_string(r.type)) + " " + octal(r.mode) + " " + owner(r);
  if (r.type == FileType::kFile) out += " size " + std::to_string(r.size) + " sha256 " + r.sha256;
  if (r.type == FileType::kSymlink) out += " -> " + r.link_target;
  return out;
}

nlohmann::json record_json(const FileRecord& r) {
  nlohmann::json j = {{"path", r.path},         {"type", to_string(r.type)},
                      {"mode", octal(r.mode)},  {"uid", r.uid},
                      {"gid", r.gid},           {"size", r.size},
                      {"mtime_ns", r.mtime_ns}, {"ctime_ns", r.ctime_ns},
                      {"inode", r.inode}};
  if (r.type == FileType::kFile) {
    j["sha256"] = r.sha256;
    j["xxh3"] = r.fast_hash;
    j["protected"] = r.is_protected;
  }
  if (r.type == FileType::kSymlink) j["target"] = r.link_target;
  return j;
}

// Paths are bytes, JSON is UTF-8: a name that is not valid UTF-8 is shown with replacements.
std::string text_of(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

const char* to_string(FileType type) {
  switch (type) {
    case FileType::kFile:
      return "file";
    case FileType::kDirectory:
      return "dir";
    case FileType::kSymlink:
      return "symlink";
    case FileType::kOther:
      return "other";
  }
  return "other";
}

const char* to_string(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kAdded:
      return "added";
    case ChangeKind::kRemoved:
      return "removed";
    case ChangeKind::kModified:
      return "modified";
  }
  return "modified";
}

std::vector<std::string> changed_names(uint32_t changed) {
  std::vector<std::string> out;
  if ((changed & kChangedContent) != 0) out.emplace_back("content");
  if ((changed & kChangedMode) != 0) out.emplace_back("mode");
  if ((changed & kChangedOwner) != 0) out.emplace_back("owner");
  if ((changed & kChangedType) != 0) out.emplace_back("type");
  if ((changed & kChangedTarget) != 0) out.emplace_back("target");
  return out;
}

std::string describe(const FileChange& change) {
  std::string line = std::string(to_string(change.kind)) + " " + change.path;
  if (change.kind == ChangeKind::kAdded && change.after) return line + " " + summary(*change.after);
  if (change.kind == ChangeKind::kRemoved && change.before) {
    return line + " (was " + summary(*change.before) + ")";
  }
  if (!change.before || !change.after) return line;
  const FileRecord& a = *change.before;
  const FileRecord& b = *change.after;
  std::vector<std::string> parts;
  if ((change.changed & kChangedType) != 0) {
    parts.push_back(std::string("type ") + to_string(a.type) + " -> " + to_string(b.type));
  }
  if ((change.changed & kChangedContent) != 0) {
    parts.push_back("content sha256 " + a.sha256 + " -> " + b.sha256 + ", size " +
                    std::to_string(a.size) + " -> " + std::to_string(b.size));
  }
  if ((change.changed & kChangedMode) != 0) {
    parts.push_back("mode " + octal(a.mode) + " -> " + octal(b.mode) +
                    special_bits_added(a.mode, b.mode));
  }
  if ((change.changed & kChangedOwner) != 0) {
    parts.push_back("owner " + owner(a) + " -> " + owner(b));
  }
  if ((change.changed & kChangedTarget) != 0) {
    parts.push_back("target " + a.link_target + " -> " + b.link_target);
  }
  for (size_t i = 0; i < parts.size(); ++i) line += (i == 0 ? " " : "; ") + parts[i];
  return line;
}

std::string to_json(const FileChange& change) {
  nlohmann::json j = {{"kind", to_string(change.kind)},
                      {"path", change.path},
                      {"changed", changed_names(change.changed)}};
  if (change.before) j["before"] = record_json(*change.before);
  if (change.after) j["after"] = record_json(*change.after);
  return text_of(j);
}

std::string to_json(const FileRecord& record) {
  return text_of(record_json(record));
}

}  // namespace palisade::fim

// One reader of /proc/<pid>/mountinfo (proc(5)): the mount table as the kernel prints it, with
// the kernel's octal escapes (\040 for a space, \011, \012, \134) undone in paths.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace palisade::base {

struct MountEntry {
  uint32_t mount_id = 0;
  uint32_t parent_id = 0;
  std::string root;         // the directory of the filesystem mounted here (unescaped)
  std::string mount_point;  // where, relative to the reader's root (unescaped)
  std::string mount_options;
  std::string fstype;
  std::string source;         // unescaped
  std::string super_options;  // as printed: values may hold escapes (see unescape_mount_text)

  bool has_mount_option(std::string_view option) const;
};

// Undoes the \ooo escapes the kernel writes for space, tab, newline and backslash.
std::string unescape_mount_text(std::string_view text);

// One line; nullopt when it is not a well-formed mountinfo line.
std::optional<MountEntry> parse_mountinfo_line(std::string_view line);

// Every well-formed line, in the kernel's order (a later mount on the same point is on top).
std::vector<MountEntry> parse_mountinfo(std::istream& in);

// /proc/self/mountinfo when pid is 0. Empty when it cannot be read (the process is gone).
std::vector<MountEntry> read_mountinfo(uint32_t pid = 0);

}  // namespace palisade::base

#include "palisade/base/mountinfo.h"

#include <charconv>
#include <fstream>
#include <istream>

namespace palisade::base {
namespace {

bool is_octal(char c) {
  return c >= '0' && c <= '7';
}

// The next space-separated field of `rest`, which advances past it.
std::string_view next_field(std::string_view& rest) {
  const size_t start = rest.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  rest.remove_prefix(start);
  const size_t end = rest.find(' ');
  const std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return field;
}

bool parse_id(std::string_view text, uint32_t& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

bool MountEntry::has_mount_option(std::string_view option) const {
  std::string_view rest = mount_options;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    if (rest.substr(0, comma) == option) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

std::string unescape_mount_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size() && is_octal(text[i + 1]) && is_octal(text[i + 2]) &&
        is_octal(text[i + 3])) {
      out.push_back(static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 +
                                      (text[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::optional<MountEntry> parse_mountinfo_line(std::string_view line) {
  // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue":
  // six fixed fields, optional fields up to a lone "-", then fstype, source, super options.
  MountEntry entry;
  std::string_view rest = line;
  if (!parse_id(next_field(rest), entry.mount_id) || !parse_id(next_field(rest), entry.parent_id)) {
    return std::nullopt;
  }
  next_field(rest);  // major:minor
  const std::string_view root = next_field(rest);
  const std::string_view point = next_field(rest);
  const std::string_view options = next_field(rest);
  if (options.empty()) return std::nullopt;
  for (std::string_view field = next_field(rest); field != "-"; field = next_field(rest)) {
    if (field.empty()) return std::nullopt;  // no separator
  }
  const std::string_view fstype = next_field(rest);
  const std::string_view source = next_field(rest);
  if (fstype.empty()) return std::nullopt;
  entry.root = unescape_mount_text(root);
  entry.mount_point = unescape_mount_text(point);
  entry.mount_options = std::string(options);
  entry.fstype = std::string(fstype);
  entry.source = unescape_mount_text(source);
  entry.super_options = std::string(next_field(rest));
  return entry;
}

std::vector<MountEntry> parse_mountinfo(std::istream& in) {
  std::vector<MountEntry> out;
  std::string line;
  while (std::getline(in, line)) {
    if (auto entry = parse_mountinfo_line(line)) out.push_back(std::move(*entry));
  }
  return out;
}

std::vector<MountEntry> read_mountinfo(uint32_t pid) {
  std::ifstream in(pid == 0 ? std::string("/proc/self/mountinfo")
                            : "/proc/" + std::to_string(pid) + "/mountinfo");
  return parse_mountinfo(in);
}

}  // namespace palisade::base

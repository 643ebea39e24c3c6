#include "inspect/config_parsers.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

namespace palisade::hypervisor::inspect {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> out;
  size_t begin = 0;
  for (;;) {
    const size_t end = text.find(separator, begin);
    out.push_back(text.substr(begin, end == std::string_view::npos ? end : end - begin));
    if (end == std::string_view::npos) return out;
    begin = end + 1;
  }
}

// The first n white-space separated words, and what follows them (trimmed) in rest.
std::vector<std::string_view> words(std::string_view text, size_t n, std::string_view& rest) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (out.size() < n) {
    while (i < text.size() && is_space(text[i])) ++i;
    if (i == text.size()) break;
    const size_t begin = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    out.push_back(text.substr(begin, i - begin));
  }
  rest = trim(text.substr(i));
  return out;
}

std::optional<uint32_t> parse_id(std::string_view text) {
  uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// For passwd-like files: parse gets the fields of each non-blank line that has exactly `fields`
// of them and a name; a line it refuses, or with another count, is counted in malformed.
template <typename Parse>
void for_each_record(std::string_view text, size_t fields, size_t& malformed, Parse parse) {
  for (const std::string_view raw : split_lines(text)) {
    const std::string_view line = trim(raw);
    if (line.empty()) continue;
    const std::vector<std::string_view> f = split(line, ':');
    if (f.size() != fields || f[0].empty() || !parse(f)) ++malformed;
  }
}

std::string collapse_spaces(std::string_view text) {
  std::string out;
  bool space = false;
  for (const char c : text) {
    if (is_space(c)) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

bool starts_with_word(std::string_view line, std::string_view word) {
  return line.size() >= word.size() && line.substr(0, word.size()) == word &&
         (line.size() == word.size() || is_space(line[word.size()]));
}

// A '#' begins a comment unless it stands for a numeric ID ("#1000", "%#1000", "(#0)"): digits
// follow it, or it is glued to the word before.
std::string_view strip_sudoers_comment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '#') continue;
    const bool after_space = i == 0 || is_space(line[i - 1]);
    const bool before_digit = i + 1 < line.size() && is_digit(line[i + 1]);
    if (after_space && !before_digit) return line.substr(0, i);
  }
  return line;
}

bool is_assignment(std::string_view line) {
  size_t i = 0;
  if (line.empty() || !(std::isalpha(static_cast<unsigned char>(line[0])) || line[0] == '_')) {
    return false;
  }
  while (i < line.size() && (std::isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_')) {
    ++i;
  }
  while (i < line.size() && is_space(line[i])) ++i;
  return i < line.size() && line[i] == '=';
}

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines = split(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

std::vector<GuestUser> parse_passwd(std::string_view text, size_t& malformed) {
  std::vector<GuestUser> out;
  for_each_record(text, 7, malformed, [&](const std::vector<std::string_view>& f) {
    const std::optional<uint32_t> uid = parse_id(f[2]);
    const std::optional<uint32_t> gid = parse_id(f[3]);
    if (!uid || !gid) return false;
    out.push_back({std::string(f[0]), *uid, *gid, std::string(f[5]), std::string(f[6])});
    return true;
  });
  return out;
}

std::vector<GuestGroup> parse_group(std::string_view text, size_t& malformed) {
  std::vector<GuestGroup> out;
  for_each_record(text, 4, malformed, [&](const std::vector<std::string_view>& f) {
    const std::optional<uint32_t> gid = parse_id(f[2]);
    if (!gid) return false;
    GuestGroup group{std::string(f[0]), *gid, {}};
    for (const std::string_view member : split(f[3], ',')) {
      if (!trim(member).empty()) group.members.emplace_back(trim(member));
    }
    std::sort(group.members.begin(), group.members.end());
    out.push_back(std::move(group));
    return true;
  });
  return out;
}

std::vector<std::string> sudoers_lines(std::string_view text) {
  std::vector<std::string> out;
  std::string logical;
  const auto finish = [&] {
    const std::string_view line = trim(logical);
    std::string_view kept;
    if (starts_with_word(line, "#include") || starts_with_word(line, "#includedir")) {
      kept = line;  // a directive, although it starts like a comment
    } else {
      kept = trim(strip_sudoers_comment(line));
    }
    if (!kept.empty()) out.push_back(collapse_spaces(kept));
    logical.clear();
  };
  for (const std::string_view raw : split_lines(text)) {
    const std::string_view line = trim(raw);
    if (!line.empty() && line.back() == '\\') {
      logical.append(line.substr(0, line.size() - 1));
      logical.push_back(' ');
      continue;
    }
    logical.append(line);
    finish();
  }
  if (!logical.empty()) finish();
  return out;
}

std::vector<CronEntry> parse_crontab(std::string_view text, const std::string& file,
                                     const std::string& user, bool system_format,
                                     size_t& malformed) {
  std::vector<CronEntry> out;
  for (const std::string_view raw : split_lines(text)) {
    const std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#' || is_assignment(line)) continue;
    const size_t schedule_words = line[0] == '@' ? 1 : 5;
    std::string_view rest;
    const std::vector<std::string_view> w =
        words(line, schedule_words + (system_format ? 1 : 0), rest);
    if (w.size() < schedule_words + (system_format ? 1 : 0) || rest.empty()) {
      ++malformed;
      continue;
    }
    CronEntry entry;
    entry.file = file;
    for (size_t i = 0; i < schedule_words; ++i) {
      if (i > 0) entry.schedule.push_back(' ');
      entry.schedule.append(w[i]);
    }
    entry.user = system_format ? std::string(w[schedule_words]) : user;
    entry.command = std::string(rest);
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<Package> parse_dpkg_status(std::string_view text) {
  std::vector<Package> out;
  Package current;
  bool installed = false;
  const auto finish = [&] {
    if (installed && !current.name.empty()) out.push_back(current);
    current = Package{};
    installed = false;
  };
  for (const std::string_view raw : split_lines(text)) {
    if (trim(raw).empty()) {
      finish();
      continue;
    }
    if (is_space(raw[0])) continue;  // a continuation of a multi-line field
    const size_t colon = raw.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string field = lower(raw.substr(0, colon));
    const std::string_view value = trim(raw.substr(colon + 1));
    if (field == "package") current.name = std::string(value);
    if (field == "version") current.version = std::string(value);
    if (field == "architecture") current.arch = std::string(value);
    if (field == "status") {
      const size_t last = value.rfind(' ');
      installed = value.substr(last == std::string_view::npos ? 0 : last + 1) == "installed";
    }
  }
  finish();
  return out;
}

std::vector<std::string> authorized_keys_patterns(std::string_view sshd_config) {
  for (const std::string_view raw : split_lines(sshd_config)) {
    const std::string_view line = trim(raw);
    if (line.empty() || line[0] == '#') continue;
    size_t end = 0;
    while (end < line.size() && !is_space(line[end]) && line[end] != '=') ++end;
    const std::string keyword = lower(line.substr(0, end));
    if (keyword == "match") break;  // what follows applies to some connections only
    if (keyword != "authorizedkeysfile") continue;
    std::string_view value = trim(line.substr(end));
    if (!value.empty() && value[0] == '=') value = trim(value.substr(1));
    std::vector<std::string> out;
    std::string_view rest;
    for (const std::string_view word : words(value, value.size(), rest)) {
      out.emplace_back(word);
    }
    if (out.size() == 1 && lower(out[0]) == "none") return {};
    return out;
  }
  return {".ssh/authorized_keys", ".ssh/authorized_keys2"};
}

std::string expand_keys_pattern(const std::string& pattern, const GuestUser& user) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '%' || i + 1 == pattern.size()) {
      out.push_back(pattern[i]);
      continue;
    }
    switch (pattern[++i]) {
      case 'h':
        out += user.home;
        break;
      case 'u':
        out += user.name;
        break;
      case 'U':
        out += std::to_string(user.uid);
        break;
      case '%':
        out.push_back('%');
        break;
      default:
        out.push_back('%');
        out.push_back(pattern[i]);
    }
  }
  if (out.empty() || out[0] != '/') out = (user.home == "/" ? "" : user.home) + "/" + out;
  return out;
}

}  // namespace palisade::hypervisor::inspect

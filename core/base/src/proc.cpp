#include "palisade/base/proc.h"

#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>

namespace palisade::base {
namespace {

template <typename Number>
bool parse_number(std::string_view text, Number& out) {
  const size_t start = text.find_first_not_of(" \t");
  if (start == std::string_view::npos) return false;
  text.remove_prefix(start);
  return std::from_chars(text.data(), text.data() + text.size(), out).ec == std::errc();
}

// The two first numbers of a "Uid:\t0\t0\t0\t0" line.
bool parse_pair(std::string_view text, uint32_t& first, uint32_t& second) {
  const size_t start = text.find_first_not_of(" \t");
  if (start == std::string_view::npos) return false;
  text.remove_prefix(start);
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), first);
  if (error != std::errc()) return false;
  return parse_number(text.substr(static_cast<size_t>(end - text.data())), second);
}

}  // namespace

std::string proc_path(uint32_t pid, std::string_view entry) {
  std::string path = pid == 0 ? std::string("/proc/self/") : "/proc/" + std::to_string(pid) + "/";
  path.append(entry);
  return path;
}

std::string read_proc_file(uint32_t pid, std::string_view entry, size_t limit) {
  std::ifstream in(proc_path(pid, entry), std::ios::binary);
  std::string data(limit, '\0');
  in.read(data.data(), static_cast<std::streamsize>(limit));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

std::string read_proc_link(uint32_t pid, std::string_view entry) {
  std::error_code ec;
  std::filesystem::path target = std::filesystem::read_symlink(proc_path(pid, entry), ec);
  return ec ? std::string() : target.string();
}

std::optional<ProcStatus> parse_proc_status(std::string_view text) {
  ProcStatus status;
  unsigned found = 0;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, colon);
    const std::string_view value = line.substr(colon + 1);
    if (key == "Tgid" && parse_number(value, status.tgid)) {
      found |= 1U;
    } else if (key == "PPid" && parse_number(value, status.ppid)) {
      found |= 2U;
    } else if (key == "Uid" && parse_pair(value, status.uid, status.euid)) {
      found |= 4U;
    } else if (key == "Gid" && parse_pair(value, status.gid, status.egid)) {
      found |= 8U;
    } else if (key == "VmRSS") {
      parse_number(value, status.rss_kib);  // "  1234 kB"
    } else if (key == "FDSize") {
      parse_number(value, status.fd_size);
    } else if (key == "CapEff") {
      const size_t start = value.find_first_not_of(" \t");
      if (start != std::string_view::npos) {
        std::from_chars(value.data() + start, value.data() + value.size(), status.cap_eff, 16);
      }
    }
  }
  if (found != 15U) return std::nullopt;
  return status;
}

std::optional<ProcStatus> read_proc_status(uint32_t pid) {
  return parse_proc_status(read_proc_file(pid, "status", size_t{16} * 1024));
}

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  const size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  ProcStat stat;
  // Field 3 (state) follows the comm; ppid is field 4, starttime field 22.
  for (int index = 3; index <= 22; ++index) {
    const size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(start);
    const size_t end = rest.find(' ');
    const std::string_view field = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    if (index == 4 && !parse_number(field, stat.ppid)) return std::nullopt;
    if (index == 22 && !parse_number(field, stat.start_ticks)) return std::nullopt;
  }
  return stat;
}

uint64_t namespace_inode(uint32_t pid, std::string_view name) {
  struct stat st {};
  if (stat(proc_path(pid, std::string("ns/").append(name)).c_str(), &st) != 0) return 0;
  return st.st_ino;
}

}  // namespace palisade::base

// One reader of /proc/<pid>: the files the agent reads of a process, parsed once, here. Every
// reader tolerates a process that is gone (an empty or absent answer, never an exception).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace palisade::base {

// "/proc/<pid>/<entry>", or /proc/self/<entry> when pid is 0.
std::string proc_path(uint32_t pid, std::string_view entry);
// At most `limit` bytes of a /proc file; empty when it cannot be read.
std::string read_proc_file(uint32_t pid, std::string_view entry, size_t limit = size_t{64} * 1024);
// The target of a /proc link (exe, cwd, fd/N); empty when it cannot be read.
std::string read_proc_link(uint32_t pid, std::string_view entry);

// The fields of /proc/<pid>/status the agent uses.
struct ProcStatus {
  uint32_t tgid = 0;
  uint32_t ppid = 0;
  uint32_t uid = 0;  // real
  uint32_t euid = 0;
  uint32_t gid = 0;  // real
  uint32_t egid = 0;
  uint64_t rss_kib = 0;  // VmRSS; 0 for kernel threads, which have none
  uint32_t fd_size = 0;  // FDSize: slots in the descriptor table, above every descriptor number
  uint64_t cap_eff = 0;  // CapEff: bit n set = capability n effective
};
// nullopt unless the text has the Tgid, PPid, Uid and Gid lines.
std::optional<ProcStatus> parse_proc_status(std::string_view text);
std::optional<ProcStatus> read_proc_status(uint32_t pid);

// The fields of /proc/<pid>/stat the agent uses.
struct ProcStat {
  uint32_t ppid = 0;
  uint64_t start_ticks = 0;  // field 22: clock ticks after boot
};
// The comm field may hold spaces and parentheses: the fields resume after the last ')'.
std::optional<ProcStat> parse_proc_stat(std::string_view text);

// The inode of /proc/<pid>/ns/<name> (pid, mnt, net...): the namespace's id; 0 when gone.
uint64_t namespace_inode(uint32_t pid, std::string_view name);

}  // namespace palisade::base

// Response actions on this host: kill a process (or its whole tree), quarantine a file and restore
// it. The callers (`palisade respond`, detection-rule responses) record each action as an audited
// event; these functions only act and say exactly what they did.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace palisade::agent {

struct KillReport {
  std::vector<uint32_t> killed;                          // pids sent SIGKILL
  std::vector<std::pair<uint32_t, std::string>> failed;  // pid and why
};

// Kills `pid`; with `tree`, every descendant too. The whole tree is stopped (SIGSTOP) before any
// of it is killed, and re-scanned until no new child appears, so nothing escapes by forking.
// Refuses pid 1 and the caller itself.
KillReport kill_process(uint32_t pid, bool tree);

// The descendants of `pid` (children first), from /proc.
std::vector<uint32_t> descendants_of(uint32_t pid);

struct QuarantineRecord {
  std::string original_path;
  std::string quarantined_path;  // inside the quarantine directory, mode 000
  std::string sha256;
  uint64_t size = 0;
  uint32_t mode = 0;  // the original permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  int64_t time_ms = 0;
};

// Moves a regular file into `quarantine_dir` (created 0700), strips its permissions and keeps a
// record (JSON next to it) of its hash and origin. Symlinks are refused, not followed. Throws
// std::runtime_error naming the path and the reason.
QuarantineRecord quarantine_file(const std::string& path, const std::string& quarantine_dir);

// Puts the most recently quarantined file that came from `original_path` back, with its mode and
// owner, and forgets its record. Throws when there is none or the path is occupied.
QuarantineRecord restore_file(const std::string& original_path, const std::string& quarantine_dir);

// Every record in the quarantine directory, oldest first.
std::vector<QuarantineRecord> quarantined_files(const std::string& quarantine_dir);

}  // namespace palisade::agent

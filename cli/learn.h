#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace palisade::cli {

struct LearnOptions {
  std::string name;
  std::string db;
  std::vector<std::string> hosts;  // the selector written into the policy
  std::string exe_glob;            // only this workload: processes (and their descendants) whose
                                   // executable matches; empty = everything on the host
  std::optional<uint64_t> since_ms;
  unsigned duration_seconds = 0;  // observe for this long from now (a live agent records)
  size_t limit = 1'000'000;
};

struct LearnResult {
  std::string yaml;
  size_t events = 0;
  size_t executables = 0;
  size_t peers = 0;
  size_t served_ports = 0;
  size_t writable_paths = 0;
};

LearnResult learn_workload_policy(const LearnOptions& options);

}  // namespace palisade::cli

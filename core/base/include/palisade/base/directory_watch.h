// Tells when a file that matters changed in a set of directories: written in place, moved in
// (an editor's or the kubelet's atomic rename), created or removed. A mounted ConfigMap is
// updated by swapping its "..data" symlink; that rename is seen here too. One inotify
// descriptor, read without blocking; a directory that does not exist yet is looked for again
// every few seconds.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "palisade/base/unique_fd.h"

namespace palisade::base {

class DirectoryWatch {
 public:
  struct Target {
    std::string directory;
    // Which names in it matter (a status file written beside a configuration must not count).
    std::function<bool(std::string_view name)> matters;
  };

  explicit DirectoryWatch(std::vector<Target> targets);
  // Drains what happened since the last call: true when a file that matters changed.
  bool changed();
  // The directories being watched now (for the status).
  std::vector<std::string> watched() const;

 private:
  void add_missing();

  struct Watched {
    Target target;
    int wd = -1;  // -1: not there (yet)
  };
  UniqueFd fd_;
  std::vector<Watched> targets_;
  std::chrono::steady_clock::time_point next_retry_{};
};

// A ConfigMap's own entries ("..data", "..2026_12_04_...") as the kubelet swaps them in.
bool is_kubelet_swap(std::string_view name);

}  // namespace palisade::base

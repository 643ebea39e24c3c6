// sha256 of files, computed once per file version. A version is the file's identity and change
// stamps (device, inode, size, mtime, ctime): a write changes mtime/ctime, so a changed file is
// hashed again and its old entry ages out. Bounded: least recently used entries go first.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <string>

#include "palisade/base/lru_map.h"

namespace palisade::base {

struct FileHashStats {
  uint64_t hits = 0;
  uint64_t misses = 0;  // hashed (or found unhashable)
  uint64_t evictions = 0;
  uint64_t too_large = 0;  // files over the size limit are not hashed
  size_t entries = 0;
};

class FileHashCache {
 public:
  explicit FileHashCache(size_t capacity = 4096, uint64_t max_file_bytes = 256ULL << 20)
      : max_file_bytes_(max_file_bytes), hashes_(capacity) {}

  // The lowercase hex sha256 of the regular file at path (symlinks and /proc/<pid>/exe links are
  // followed); empty when it cannot be opened, is not a regular file or is over the size limit.
  std::string sha256(const std::string& path);
  // The same for an open descriptor (fanotify hands one over); the offset is not used.
  std::string sha256_of_fd(int fd);

  FileHashStats stats() const;

 private:
  struct Key {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  uint64_t max_file_bytes_;
  mutable std::mutex mutex_;  // the agent's pipeline and the CLI's tools may share one cache
  LruMap<Key, std::string, KeyHash> hashes_;
  FileHashStats stats_;
};

// sha256 of everything readable from fd, hex; empty on a read error.
std::string sha256_hex(int fd);

}  // namespace palisade::base

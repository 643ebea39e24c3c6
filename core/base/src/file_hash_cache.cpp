#include "palisade/base/file_hash_cache.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <memory>

#include "palisade/base/content_hasher.h"

namespace palisade::base {

std::string sha256_hex(int fd) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return {};
  std::array<char, 1 << 16> buffer{};
  off_t offset = 0;
  for (;;) {
    const ssize_t n = pread(fd, buffer.data(), buffer.size(), offset);
    if (n < 0) return {};
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n));
    offset += n;
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &length) != 1) return {};
  return to_hex(digest.data(), length);
}

size_t FileHashCache::KeyHash::operator()(const Key& k) const {
  size_t h = std::hash<uint64_t>()(k.ino);
  for (uint64_t v : {static_cast<uint64_t>(k.dev), static_cast<uint64_t>(k.size),
                     static_cast<uint64_t>(k.mtime_ns), static_cast<uint64_t>(k.ctime_ns)}) {
    h ^= std::hash<uint64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  }
  return h;
}

std::string FileHashCache::sha256(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return {};
  std::string hash = sha256_of_fd(fd);
  close(fd);
  return hash;
}

std::string FileHashCache::sha256_of_fd(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return {};
  const Key key{st.st_dev, st.st_ino, st.st_size,
                static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                static_cast<int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec};
  {
    std::lock_guard lock(mutex_);
    if (const std::string* known = hashes_.find(key)) {
      stats_.hits++;
      return *known;
    }
    stats_.misses++;
    if (static_cast<uint64_t>(st.st_size) > max_file_bytes_) {
      stats_.too_large++;
      return {};
    }
  }
  // Hash outside the lock: a large file must not stall other lookups.
  std::string hash = sha256_hex(fd);
  if (hash.empty()) return hash;
  std::lock_guard lock(mutex_);
  hashes_.put(key, hash);
  return hash;
}

FileHashStats FileHashCache::stats() const {
  std::lock_guard lock(mutex_);
  FileHashStats s = stats_;
  s.entries = hashes_.size();
  s.evictions = hashes_.evictions();
  return s;
}

}  // namespace palisade::base

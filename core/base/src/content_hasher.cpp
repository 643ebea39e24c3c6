#include "palisade/base/content_hasher.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <system_error>

#include "palisade/base/errno_text.h"

namespace palisade::base {
namespace {

// Below a page, reads cost more in syscalls than they save in memory.
constexpr uint64_t kMinBuffer = 4096;

}  // namespace

std::string to_hex(const unsigned char* bytes, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += kHex[bytes[i] >> 4];
    out += kHex[bytes[i] & 0xf];
  }
  return out;
}

ContentHasher::ContentHasher(uint64_t buffer_bytes)
    : buffer_(static_cast<size_t>(std::max(buffer_bytes, kMinBuffer))),
      sha_(EVP_MD_CTX_new(), EVP_MD_CTX_free),
      fast_(XXH3_createState(), XXH3_freeState) {
  if (!sha_ || !fast_) throw std::bad_alloc();
}

std::string ContentHasher::hash(int fd, bool want_sha256, int copy_fd, Digest& out) {
  out = Digest{};
  if (XXH3_64bits_reset(fast_.get()) != XXH_OK) return "xxh3: reset failed";
  if (want_sha256 && EVP_DigestInit_ex(sha_.get(), EVP_sha256(), nullptr) != 1) {
    return "sha256: init failed";
  }
  for (;;) {
    const ssize_t n = read(fd, buffer_.data(), buffer_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return "read: " + base::errno_text(errno);
    if (n == 0) break;
    const auto size = static_cast<size_t>(n);
    XXH3_64bits_update(fast_.get(), buffer_.data(), size);
    if (want_sha256) EVP_DigestUpdate(sha_.get(), buffer_.data(), size);
    if (copy_fd >= 0 && !write_all(copy_fd, buffer_.data(), size)) {
      return "copy: " + base::errno_text(errno);
    }
    out.bytes += size;
  }
  // Canonical (big-endian) bytes, so the hex reads like xxhsum's output.
  XXH64_canonical_t canonical;
  XXH64_canonicalFromHash(&canonical, XXH3_64bits_digest(fast_.get()));
  out.fast_hash = to_hex(canonical.digest, sizeof(canonical.digest));
  if (want_sha256) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(sha_.get(), digest.data(), &length) != 1) return "sha256: final failed";
    out.sha256 = to_hex(digest.data(), length);
  }
  return {};
}

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace palisade::base

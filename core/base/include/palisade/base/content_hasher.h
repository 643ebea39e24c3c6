// Reads a file once and yields both content hashes: XXH3-64 (fast, compared first) and, when
// asked, SHA-256 (collision resistant, what reports show). Optionally copies the bytes it reads,
// so a protected file's approved copy is exactly the content that was hashed. Memory is one
// fixed buffer however large the file is.
#pragma once

#include <openssl/evp.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace palisade::base {

struct Digest {
  std::string sha256;  // empty unless asked for
  std::string fast_hash;
  uint64_t bytes = 0;
};

class ContentHasher {
 public:
  explicit ContentHasher(uint64_t buffer_bytes);

  // Reads fd from its current offset to the end. With copy_fd >= 0, writes every byte there too.
  // Empty on success, else what failed (read or write, with the errno text).
  std::string hash(int fd, bool want_sha256, int copy_fd, Digest& out);

 private:
  std::vector<char> buffer_;
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha_;
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> fast_;
};

// Lowercase hex, two digits a byte.
std::string to_hex(const unsigned char* bytes, size_t size);

// Writes all of `size` bytes; false with errno set otherwise.
bool write_all(int fd, const char* data, size_t size);

}  // namespace palisade::base
